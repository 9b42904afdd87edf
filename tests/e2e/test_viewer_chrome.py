"""The viewer as webKnossos and napari users know it, in real chromium: the `?` list of keys,
one view maximised, a colour legend, undo that survives a reload, who else is here, and side
panels that fold so Retrain fits on a 1280 × 720 screen."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from annotations.models import Stroke
from tests.conftest import login, screenshot_dir, wait_until
from tests.factories import PASSWORD, make_volume

pytestmark = [pytest.mark.e2e, pytest.mark.services]

SHOTS = screenshot_dir()


def _open(browser: Any, base: str, user: Any, volume: Any, size: tuple[int, int] = (1600, 1000)) -> Any:
    page = browser.new_context(viewport={"width": size[0], "height": size[1]}).new_page()
    login(page, base, user.username, PASSWORD)
    page.goto(f"{base}/volumes/{volume.pk}/")
    page.wait_for_selector("#viewer-xy canvas")
    page.wait_for_function("() => document.querySelector('#status')?.textContent.trim() === 'connected'",
                           timeout=20000)
    return page


def _over_xy(page: Any) -> None:
    box = page.locator("#viewer-xy canvas").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2 + 30, box["y"] + box["height"] / 2 + 20)


def test_keys_overlay_maximise_and_legend(live_app: str, browser: Any, cast: Any, tmp_path: Path) -> None:
    volume = make_volume(cast.project, tmp_path)
    page = _open(browser, live_app, cast.annotator, volume)
    page.keyboard.press("Shift+?")
    overlay = page.locator("#keys-overlay")
    assert overlay.is_visible()
    text = overlay.inner_text()
    for expected in ("Maximise the view under the mouse", "Ctrl+Shift+Z", "Undo your last stroke", "1 – 9", "double-click"):
        assert expected in text, expected
    page.screenshot(path=str(SHOTS / "viewer-keys-1600.png"))
    page.set_viewport_size({"width": 1280, "height": 720})
    page.screenshot(path=str(SHOTS / "viewer-keys-1280.png"))
    page.set_viewport_size({"width": 1600, "height": 1000})
    page.keyboard.press("Escape")
    assert not overlay.is_visible()

    # The legend names the classes of the layers shown; L hides it.
    legend = page.locator("#legend")
    assert legend.is_visible() and "mitochondrion" in legend.inner_text().lower()
    page.keyboard.press("l")
    assert not legend.is_visible()
    page.keyboard.press("l")

    # M over the XY view: it alone fills the grid, wider than before; M again brings the three back.
    before = page.locator("#viewer-xy").bounding_box()["width"]
    _over_xy(page)
    page.keyboard.press("m")
    page.wait_for_function("() => document.querySelector('.view-grid').classList.contains('has-max')")
    assert not page.locator("#viewer-xz").is_visible() and not page.locator("#viewer-yz").is_visible()
    assert page.locator("#viewer-xy").bounding_box()["width"] > before * 1.3
    page.screenshot(path=str(SHOTS / "viewer-maximised-legend-1600.png"))
    page.set_viewport_size({"width": 1280, "height": 720})
    page.wait_for_timeout(300)
    page.screenshot(path=str(SHOTS / "viewer-maximised-legend-1280.png"))
    page.set_viewport_size({"width": 1600, "height": 1000})
    page.click("#viewer-xy .view-max")
    assert page.locator("#viewer-xz").is_visible()
    page.click("#viewer-yz .view-max")
    assert page.locator("#viewer-yz").is_visible() and not page.locator("#viewer-xy").is_visible()


def test_undo_after_a_reload_takes_back_the_last_own_stroke(live_app: str, browser: Any, cast: Any,
                                                              tmp_path: Path) -> None:
    volume = make_volume(cast.project, tmp_path)
    page = _open(browser, live_app, cast.annotator, volume)
    box = page.locator("#viewer-xy canvas").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    for dy in (-40, 40):  # two strokes; the second is the one undo must take
        page.mouse.move(cx - 25, cy + dy)
        page.mouse.down()
        for dx in range(-25, 26, 5):
            page.mouse.move(cx + dx, cy + dy)
        page.mouse.up()
        page.wait_for_timeout(300)
    wait_until(lambda: Stroke.objects.filter(layer__volume=volume, user=cast.annotator).count() == 2)
    first, second = Stroke.objects.filter(layer__volume=volume).order_by("id")
    page.reload()
    page.wait_for_function("() => document.querySelector('#status')?.textContent.trim() === 'connected'",
                           timeout=20000)
    page.wait_for_function("() => document.querySelectorAll('#history-list [data-state=applied]').length === 2",
                           timeout=10000)
    page.keyboard.press("Control+z")
    wait_until(lambda: not Stroke.objects.get(pk=second.pk).active)
    assert Stroke.objects.get(pk=first.pk).active
    assert page.locator(f"#history-list [data-uuid='{second.uuid}']").get_attribute("data-state") == "undone"


def test_who_else_is_here_and_on_which_slice(live_app: str, browser: Any, cast: Any, tmp_path: Path) -> None:
    volume = make_volume(cast.project, tmp_path)
    alice = _open(browser, live_app, cast.annotator, volume)
    bob = _open(browser, live_app, cast.reviewer, volume, size=(1280, 720))
    # Each sees the other, both ways: the one already there answers the newcomer.
    bob.wait_for_selector("#presence .peer[data-user=annotator]", timeout=10000)
    alice.wait_for_selector("#presence .peer[data-user=reviewer]", timeout=10000)
    _over_xy(alice)
    alice.keyboard.press("ArrowDown")
    z = alice.evaluate("() => window.emViewer.ctx.focus.value[0]")
    bob.wait_for_function(f"() => document.querySelector('#presence .peer[data-user=annotator]').textContent.includes('z {z}')",
                          timeout=10000)
    # A click on the chip takes bob to alice's slice.
    bob.click("#presence .peer[data-user=annotator]")
    assert bob.evaluate("() => window.emViewer.ctx.focus.value[0]") == z
    bob.screenshot(path=str(SHOTS / "viewer-presence-1280.png"))
    alice.screenshot(path=str(SHOTS / "viewer-presence-1600.png"))
    alice.context.close()
    bob.wait_for_selector("#presence .peer[data-user=annotator]", state="detached", timeout=10000)


def test_on_a_1280_by_720_screen_retrain_fits_and_panels_fold(live_app: str, browser: Any, cast: Any,
                                                               tmp_path: Path) -> None:
    volume = make_volume(cast.project, tmp_path)
    page = _open(browser, live_app, cast.annotator, volume, size=(1280, 720))
    page.wait_for_selector("#retrain-btn")
    box = page.locator("#retrain-btn").bounding_box()
    assert box["y"] + box["height"] <= 720, f"Retrain is below the fold at y={box['y']}"
    assert page.locator("#segment-btn").is_visible()
    assert "folded" in page.locator("#models-panel").get_attribute("class")
    page.screenshot(path=str(SHOTS / "viewer-small-screen-1280.png"))
    # A folded panel opens with a click on its title, and the choice is kept across a reload.
    page.click("#models-panel h2")
    assert page.locator("#model-list").is_visible()
    page.reload()
    page.wait_for_selector("#models-panel")
    assert "folded" not in page.locator("#models-panel").get_attribute("class")
    full = _open(browser, live_app, cast.annotator, volume)
    full.wait_for_selector("#retrain-btn")
    assert "folded" not in full.locator("#history-panel").get_attribute("class")
    full.screenshot(path=str(SHOTS / "viewer-panels-1600.png"))


COLOURED_PIXELS = """() => {
  const src = document.querySelector('#view-3d canvas');
  const c = document.createElement('canvas');
  c.width = src.width; c.height = src.height;
  const g = c.getContext('2d');
  g.drawImage(src, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i] - 11) + Math.abs(d[i + 1] - 13) + Math.abs(d[i + 2] - 16) > 40) n++;
  return n;
}"""


def test_the_3d_view_beside_the_slices_draws_the_painted_classes(live_app: str, browser: Any, cast: Any,
                                                                 tmp_path: Path) -> None:
    from tests.segmentation.phantom_volumes import phantom_volume

    pv = phantom_volume(cast.project, tmp_path)
    for size, name in (((1600, 1000), "viewer-3d-1600.png"), ((1280, 720), "viewer-3d-1280.png")):
        page = _open(browser, live_app, cast.annotator, pv.volume, size)
        assert not page.locator("#view-3d").is_visible()
        _over_xy(page)
        page.keyboard.press("d")
        page.wait_for_function("() => ['ready', 'error'].includes(document.querySelector('#view-3d').dataset.state)",
                               timeout=60000)
        view = page.locator("#view-3d")
        assert view.get_attribute("data-state") == "ready", view.inner_text()
        nodes = view.get_attribute("data-nodes").split(",")
        assert "nucleus" in nodes and "background" not in nodes
        assert page.locator("#viewer-xz").is_visible() and page.locator("#viewer-yz").is_visible()
        page.wait_for_timeout(500)
        assert page.evaluate(COLOURED_PIXELS) > 500, "the 3D canvas is empty"
        page.screenshot(path=str(SHOTS / name))
        page.context.close()
