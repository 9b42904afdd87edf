"""Painting in real headless chromium: what the user sees, what the server keeps, what others see."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from annotations.models import Stroke
from tests.conftest import login, wait_until
from tests.factories import PASSWORD, make_volume

pytestmark = [pytest.mark.e2e, pytest.mark.services]

CENTRE_PIXEL = """() => {
  const c = document.querySelector('#viewer-xy canvas');
  // A little off centre: the crosshair runs through the centre itself.
  const d = c.getContext('2d').getImageData(Math.floor(c.width / 2) + 12, Math.floor(c.height / 2) + 4, 1, 1).data;
  return [d[0], d[1], d[2]];
}"""


@pytest.fixture
def grey_volume(cast: Any, tmp_path: Path) -> Any:
    return make_volume(cast.project, tmp_path, data=np.full((3, 256, 256), 128, np.uint8), name="grey")


def _open(browser: Any, base: str, user: Any, volume: Any) -> Any:
    """A logged-in page on the volume, in a browser context (cookies) of its own."""
    page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    login(page, base, user.username, PASSWORD)
    page.goto(f"{base}/volumes/{volume.pk}/")
    page.wait_for_selector("#viewer-xy canvas")
    page.wait_for_function("() => document.querySelector('#status')?.textContent.trim() === 'connected'",
                           timeout=20000)
    page.wait_for_function(f"() => {{ const p = ({CENTRE_PIXEL})(); return p[0] > 100 && p[0] < 160; }}",
                           timeout=20000)
    return page


def _paint_centre(page: Any) -> None:
    box = page.locator("#viewer-xy canvas").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx - 25, cy)
    page.mouse.down()
    for dx in range(-25, 26, 5):
        page.mouse.move(cx + dx, cy)
    page.mouse.up()


def _is_yellow(pixel: list[int]) -> bool:
    r, g, b = pixel
    return r - b > 50 and g - b > 40


def _wait_yellow(page: Any, yellow: bool = True) -> None:
    check = "p[0] - p[2] > 50 && p[1] - p[2] > 40"
    page.wait_for_function(f"() => {{ const p = ({CENTRE_PIXEL})(); return {'' if yellow else '!'}({check}); }}",
                           timeout=15000)


def test_paint_see_it_reload_and_undo(live_app: str, browser: Any, cast: Any, grey_volume: Any) -> None:
    page = _open(browser, live_app, cast.annotator, grey_volume)
    nucleus = cast.project.label_classes.get(name="nucleus").value
    page.click(f"[data-class-value='{nucleus}']")
    page.click("#tool-brush")
    _paint_centre(page)
    _wait_yellow(page)
    page.wait_for_function("() => !document.querySelector('#pending') || "
                           "document.querySelector('#pending').textContent.trim() in {'': 1, '0': 1}", timeout=15000)
    wait_until(lambda: Stroke.objects.filter(layer__volume=grey_volume).exists())
    stroke = Stroke.objects.get(layer__volume=grey_volume)
    assert stroke.value == nucleus and stroke.user == cast.annotator

    page.keyboard.press("Control+z")
    _wait_yellow(page, yellow=False)
    wait_until(lambda: not Stroke.objects.get(pk=stroke.pk).active)
    page.keyboard.press("Control+Shift+z")
    _wait_yellow(page)

    page.reload()
    page.wait_for_selector("#viewer-xy canvas")
    _wait_yellow(page)  # drawn from the server's label tiles now
    wait_until(lambda: Stroke.objects.get(pk=stroke.pk).active)


def test_a_second_browser_sees_the_stroke_live(live_app: str, browser: Any, cast: Any, grey_volume: Any) -> None:
    painter = _open(browser, live_app, cast.annotator, grey_volume)
    watcher = _open(browser, live_app, cast.viewer, grey_volume)
    painter.click(f"[data-class-value='{cast.project.label_classes.get(name='nucleus').value}']")
    _paint_centre(painter)
    _wait_yellow(watcher)


def test_a_viewer_has_no_painting_tools(live_app: str, browser: Any, cast: Any, grey_volume: Any) -> None:
    page = _open(browser, live_app, cast.viewer, grey_volume)
    assert not page.locator("#tool-brush").is_visible()
    _paint_centre(page)
    page.wait_for_timeout(500)
    assert not _is_yellow(page.evaluate(CENTRE_PIXEL))
    assert not Stroke.objects.exists()


def test_a_dropped_websocket_loses_nothing(live_app: str, browser: Any, cast: Any, grey_volume: Any) -> None:
    page = _open(browser, live_app, cast.annotator, grey_volume)
    page.click(f"[data-class-value='{cast.project.label_classes.get(name='nucleus').value}']")
    page.evaluate("() => window.emViewer.socket.drop()")
    _paint_centre(page)
    page.wait_for_function("() => document.querySelector('#status')?.textContent.trim() === 'connected'",
                           timeout=20000)
    wait_until(lambda: Stroke.objects.filter(layer__volume=grey_volume).exists())
    page.wait_for_timeout(500)
    assert Stroke.objects.filter(layer__volume=grey_volume).count() == 1
