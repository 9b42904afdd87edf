"""The viewer in real chromium: what a double-click does, a drag from off the image, a link
that is a view, and a double-click on Retrain."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from annotations.models import Stroke
from emportal.jobs.models import Job
from segmentation.job_kinds import RETRAIN
from tests.conftest import login
from tests.factories import PASSWORD, make_volume
from tests.segmentation.phantom_volumes import phantom_volume

pytestmark = [pytest.mark.e2e, pytest.mark.services]

CONNECTED = "() => document.querySelector('#status')?.textContent.trim() === 'connected'"


def _open(browser: Any, base: str, user: Any, path: str) -> Any:
    page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    login(page, base, user.username, PASSWORD)
    page.goto(f"{base}{path}")
    page.wait_for_selector("#viewer-xy canvas")
    page.wait_for_function(CONNECTED, timeout=20000)
    return page


def _screen_of(page: Any, row: float, col: float) -> tuple[float, float]:
    """Page coordinates of plane point (row, col) in the XY view."""
    sx, sy = page.evaluate("""([row, col]) => {
        const v = window.emViewer.views[0], s = v.view.value, vp = v.viewport;
        return [vp.width / 2 + (col - s.centerCol) * vp.colNm * s.pxPerNm,
                vp.height / 2 + (row - s.centerRow) * vp.rowNm * s.pxPerNm];
    }""", [row, col])
    box = page.locator("#viewer-xy canvas").bounding_box()
    return box["x"] + sx, box["y"] + sy


def _settle(seconds: float = 1.5) -> None:
    time.sleep(seconds)  # longer than the double-click window and a socket round trip


def test_a_double_click_with_the_brush_sets_the_crosshair_and_paints_nothing(
        live_app: str, browser: Any, cast: Any, tmp_path: Path) -> None:
    volume = make_volume(cast.project, tmp_path, data=np.full((3, 128, 128), 128, np.uint8), name="grey")
    page = _open(browser, live_app, cast.annotator, f"/volumes/{volume.pk}/")
    page.click("#tool-brush")
    x, y = _screen_of(page, 30.5, 90.5)
    page.mouse.dblclick(x, y)
    _settle()
    assert not Stroke.objects.exists()
    assert page.evaluate("() => window.emViewer.ctx.focus.value") == [1, 30, 90]
    page.mouse.click(x, y)  # one click still paints one dot
    deadline = time.monotonic() + 15
    while not Stroke.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert Stroke.objects.count() == 1 and Stroke.objects.get().points == [[30, 90]]


def test_accepting_the_prediction_with_a_drag_from_off_the_image_clips_it(
        live_app: str, browser: Any, cast: Any, tmp_path: Path) -> None:
    from annotations.imaging import omezarr
    from annotations.layers import layer_create
    from annotations.storage import volume_zarr_path
    from annotations.strokes import layer_write_slices

    pv = phantom_volume(cast.project, tmp_path, labeled=())
    nucleus = cast.project.label_classes.get(name="nucleus").value
    layer_create(pv.volume, "prediction", editable=False)
    z = pv.volume.shape_z // 2
    layer_write_slices(pv.volume, "prediction", {z: np.full((pv.volume.shape_y, pv.volume.shape_x), nucleus, np.uint16)})
    page = _open(browser, live_app, cast.annotator, f"/volumes/{pv.volume.pk}/#z={z}&y=40&x=40")
    page.wait_for_function("() => !document.querySelector('#accept-prediction').disabled", timeout=10000)
    page.click("#accept-prediction")
    errors: list[str] = []
    page.on("response", lambda r: errors.append(r.text()) if "accept-prediction" in r.url and r.status >= 400 else None)
    x0, y = _screen_of(page, 20.5, 0)
    box = page.locator("#viewer-xy canvas").bounding_box()
    start = max(box["x"] + 3, x0 - 30)
    assert start < x0 - 5, "the view leaves no room left of the image"
    page.mouse.move(start, y)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(start + step * 8, y)
    page.mouse.up()
    manual = lambda: np.asarray(omezarr.open_label_level(volume_zarr_path(pv.volume), "manual", 0)[z])  # noqa: E731
    deadline = time.monotonic() + 15
    while not manual().any() and time.monotonic() < deadline and not errors:
        time.sleep(0.2)
    assert errors == []
    painted = manual()
    assert painted[20, 0] == nucleus and painted[60, 40] == 0  # from the image's edge, under the brush only


def test_a_link_opens_the_whole_view_it_names_and_keeps_it(live_app: str, browser: Any, cast: Any,
                                                           tmp_path: Path) -> None:
    volume = make_volume(cast.project, tmp_path, data=np.full((5, 128, 128), 128, np.uint8), name="grey")
    link = f"/volumes/{volume.pk}/#z=3&y=40&x=70&zoom=0.5&cy=50&cx=60&hide=manual&opacity=image:0.8,prediction:0.25"
    page = _open(browser, live_app, cast.viewer, link)
    page.wait_for_function("() => document.querySelector('#level-info').textContent.startsWith('zoom 2.0×')",
                           timeout=10000)  # 0.5 px/nm at 4 nm voxels
    view = page.evaluate("() => window.emViewer.views[0].view.value")
    assert (view["pxPerNm"], view["centerRow"], view["centerCol"]) == (0.5, 50, 60)
    assert page.evaluate("() => window.emViewer.ctx.focus.value") == [3, 40, 70]
    assert page.locator("#slice-label").inner_text().replace(" ", "") == "z3/5"
    layers = page.evaluate("() => Object.fromEntries(window.emViewer.ctx.layers.map("
                           "l => [l.name, [l.visible.value, l.opacity.value]]))")
    assert layers["manual"][0] is False and layers["image"] == [True, 0.8]
    assert not page.locator("#layer-manual .layer-visible").is_checked()
    _settle()
    after = page.evaluate("() => location.hash")
    assert "zoom=0.5000" in after and "cy=50&cx=60" in after and "hide=manual" in after
    assert "opacity=image:0.8" in after
    # A change of view is written back, so copying the address shares it.
    page.locator("#layer-manual .layer-visible").check()
    page.wait_for_function("() => !location.hash.includes('hide=')", timeout=5000)


def test_a_double_click_on_retrain_sends_one_request(live_app: str, browser: Any, cast: Any,
                                                     tmp_path: Path) -> None:
    pv = phantom_volume(cast.project, tmp_path)
    page = _open(browser, live_app, cast.annotator, f"/volumes/{pv.volume.pk}/")
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" and "/retrain/" in r.url else None)
    page.wait_for_function("() => !document.querySelector('#retrain-btn').disabled", timeout=10000)
    page.dblclick("#retrain-btn")
    page.wait_for_function("() => ['queued', 'running'].includes(document.querySelector('#training-status').dataset.state)",
                           timeout=20000)
    _settle(1.0)
    assert len(posts) == 1
    assert Job.objects.filter(kind=RETRAIN).count() == 1
    assert not page.locator(".toast.error").count()
