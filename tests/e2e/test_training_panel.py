"""The model panel in real chromium: Retrain runs on the worker and its curve appears live."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from segmentation.models import ModelVersion
from tests.conftest import login
from tests.factories import PASSWORD
from tests.segmentation.phantom_volumes import phantom_volume

pytestmark = [pytest.mark.e2e, pytest.mark.services]


def _open(browser: Any, base: str, user: Any, volume: Any) -> Any:
    page = browser.new_context(viewport={"width": 1500, "height": 1000}).new_page()
    login(page, base, user.username, PASSWORD)
    page.goto(f"{base}/volumes/{volume.pk}/")
    page.wait_for_selector("#retrain-btn")
    page.wait_for_function("() => document.querySelector('#status')?.textContent.trim() === 'connected'",
                           timeout=20000)
    return page


def test_pressing_retrain_shows_the_job_and_its_curve_then_a_new_active_version(
        live_app: str, celery_worker: Any, browser: Any, cast: Any, tmp_path: Path) -> None:
    pv = phantom_volume(cast.project, tmp_path)
    page = _open(browser, live_app, cast.annotator, pv.volume)
    page.wait_for_function("() => document.querySelector('#model-list').textContent.includes('No model yet')",
                           timeout=10000)
    # A 3-second budget keeps the test short; the select offers minutes, so add one option.
    page.evaluate("""() => { const s = document.querySelector('#retrain-minutes');
        s.append(new Option('3 s', '0.05', true, true)); }""")
    page.click("#retrain-btn")
    page.wait_for_function("() => ['queued', 'running'].includes(document.querySelector('#training-status').dataset.state)",
                           timeout=20000)
    assert page.locator("#retrain-btn").is_disabled()
    page.wait_for_function("() => ['succeeded', 'failed', 'cancelled'].includes("
                           "document.querySelector('#training-status').dataset.state)", timeout=180000)
    status = page.locator("#training-status").inner_text()
    assert "succeeded" in status, status
    page.wait_for_function("() => Number(document.querySelector('#training-chart').dataset.points || 0) > 0",
                           timeout=30000)
    assert page.locator("#training-chart .main-svg").count() >= 1  # Plotly drew it
    model = ModelVersion.objects.get()
    assert model.active and model.created_by == cast.annotator
    page.wait_for_selector(f"#model-list [data-model='{model.pk}']", timeout=20000)
    assert "active" in page.locator(f"#model-list [data-model='{model.pk}']").inner_text()
    assert page.locator("#retrain-btn").is_enabled() and page.locator("#segment-btn").is_enabled()


def test_viewers_see_the_panels_but_cannot_start_anything(
        live_app: str, browser: Any, cast: Any, tmp_path: Path) -> None:
    pv = phantom_volume(cast.project, tmp_path)
    page = _open(browser, live_app, cast.viewer, pv.volume)
    page.wait_for_function("() => document.querySelector('#retrain-btn').disabled", timeout=10000)
    for button in ("#retrain-btn", "#segment-btn", "#cells-btn", "#accept-prediction"):
        assert page.locator(button).is_disabled(), button
    page.wait_for_function("() => document.querySelector('#suggestion-list').textContent.includes('Segment the volume')",
                           timeout=10000)


def test_comparing_two_versions_shows_their_dice_and_how_each_cuts_the_probabilities(
        live_app: str, browser: Any, cast: Any, tmp_path: Path) -> None:
    pv = phantom_volume(cast.project, tmp_path)
    calibrations = ({"thresholds": {"nucleus": 0.5}, "z_blend": {}},
                    {"thresholds": {"nucleus": 0.35}, "z_blend": {"nucleus": 0.2}})
    versions: list[ModelVersion] = []
    for i, (dice, config) in enumerate(zip((0.61, 0.74), calibrations)):
        versions.append(ModelVersion.objects.create(
            project=cast.project, volume=pv.volume, weights=f"models/w{i}.pt", active=i == 1, config=config,
            classes={"background": 1, "nucleus": 2}, val_dice={"nucleus": dice},
            parent=versions[-1] if versions else None))
    page = _open(browser, live_app, cast.viewer, pv.volume)
    for v in versions:
        page.locator(f"#model-list [data-model='{v.pk}'] input[type=checkbox]").check()
    page.click("#model-compare")
    page.wait_for_selector("#model-comparison table")
    rows = [r.inner_text().split("\t") for r in page.locator("#model-comparison tr").all()]
    assert ["nucleus", "0.610", "0.740", "+0.130"] in rows
    assert ["nucleus", "0.50", "0.35 · mix 0.2"] in rows


def test_suggestions_and_cells_open_the_viewer_where_they_are_and_a_suggestion_can_be_dismissed(
        live_app: str, browser: Any, cast: Any, tmp_path: Path) -> None:
    from segmentation.models import SegmentationRun

    pv = phantom_volume(cast.project, tmp_path)
    SegmentationRun.objects.create(volume=pv.volume, layer="prediction", outputs={"suggestions": [
        {"z": 3, "y0": 0, "x0": 48, "y1": 48, "x1": 96, "score": 0.8, "dismissed": False},
        {"z": 9, "y0": 48, "x0": 0, "y1": 96, "x1": 48, "score": 0.3, "dismissed": False}]})
    SegmentationRun.objects.create(volume=pv.volume, layer="cells_auto", outputs={
        "method": "fusion", "cells": [{"id": 4, "voxels": 10, "volume_um3": 0.001, "z0": 2, "z1": 7, "slices": 6,
                                       "centroid": [5.0, 70.0, 20.0]}],
        "dice": {"fusion": {"cells": {"4": 0.9}, "mean": 0.9, "matched": {"4": 4}}}})
    page = _open(browser, live_app, cast.annotator, pv.volume)
    focus = "() => window.emViewer.ctx.focus.value"
    page.wait_for_selector("#suggestion-list .suggestion")
    thumb = page.locator("#suggestion-list .suggestion img").first
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle(), timeout=10000)
    page.locator("#suggestion-list .suggestion-text").first.click()
    assert page.evaluate(focus) == [3, 24, 72]
    page.locator("#cell-list .cell-row[data-cell='4']").click()
    assert page.evaluate(focus) == [5, 70, 20]
    page.wait_for_selector("#cells-dice-chart .main-svg", timeout=20000)  # per-cell Dice drawn
    page.locator("#suggestion-list .suggestion[data-index='0'] .dismiss").click()
    page.wait_for_function("() => document.querySelectorAll('#suggestion-list .suggestion').length === 1")
    assert SegmentationRun.objects.get(layer="prediction").outputs["suggestions"][0]["dismissed"]


def test_the_accept_brush_copies_the_prediction_into_the_labels_and_ctrl_z_takes_it_back(
        live_app: str, browser: Any, cast: Any, tmp_path: Path) -> None:
    import time

    import numpy as np

    from annotations.imaging import omezarr
    from annotations.layers import layer_create
    from annotations.models import Stroke
    from annotations.storage import volume_zarr_path
    from annotations.strokes import layer_write_slices

    pv = phantom_volume(cast.project, tmp_path, labeled=())
    nucleus = cast.project.label_classes.get(name="nucleus").value
    layer_create(pv.volume, "prediction", editable=False)
    layer_write_slices(pv.volume, "prediction", {6: np.full((96, 96), nucleus, np.uint16)})
    page = _open(browser, live_app, cast.annotator, pv.volume)
    page.wait_for_function("() => !document.querySelector('#accept-prediction').disabled", timeout=10000)
    page.click("#accept-prediction")
    box = page.locator("#viewer-xy canvas").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx - 30, cy + 10)
    page.mouse.down()
    for dx in range(-30, 31, 5):
        page.mouse.move(cx + dx, cy + 10)
    page.mouse.up()
    manual = lambda: np.asarray(omezarr.open_label_level(volume_zarr_path(pv.volume), "manual", 0)[6])  # noqa: E731
    deadline = time.monotonic() + 15
    while not manual().any() and time.monotonic() < deadline:
        time.sleep(0.2)
    painted = manual()
    assert set(np.unique(painted).tolist()) == {0, nucleus}  # the prediction's value, under the brush only
    assert 0 < (painted > 0).mean() < 0.5
    stroke = Stroke.objects.get(layer__name="manual")
    assert stroke.mode == "replace" and stroke.active
    page.wait_for_function("() => window.emViewer.session.history.canUndo", timeout=10000)
    page.locator("#viewer-xy canvas").focus()
    page.keyboard.press("Control+z")
    deadline = time.monotonic() + 15
    while manual().any() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not manual().any()
    stroke.refresh_from_db()
    assert not stroke.active
