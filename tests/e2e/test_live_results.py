"""Nothing needs a reload: what a job makes appears in the open page through its socket."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import login, screenshot_dir
from tests.factories import PASSWORD
from tests.segmentation.phantom_volumes import phantom_volume

pytestmark = [pytest.mark.e2e, pytest.mark.services]

SHOTS = screenshot_dir()

DONE = "['succeeded', 'failed', 'cancelled'].includes(document.querySelector('{}').dataset.state)"


def test_retrain_then_segment_add_the_version_and_the_prediction_layer_to_the_open_viewer(
        live_app: str, celery_worker: Any, browser: Any, cast: Any, tmp_path: Path) -> None:
    pv = phantom_volume(cast.project, tmp_path)
    page = browser.new_context(viewport={"width": 1600, "height": 1000}).new_page()
    login(page, live_app, cast.annotator.username, PASSWORD)
    page.goto(f"{live_app}/volumes/{pv.volume.pk}/")
    page.wait_for_function("() => document.querySelector('#status')?.textContent.trim() === 'connected'",
                           timeout=20000)
    assert page.locator("#layer-prediction").count() == 0
    page.evaluate("() => { window.__sameDocument = true; }")  # gone if the page reloads
    prediction_tiles: list[str] = []
    page.on("request", lambda r: prediction_tiles.append(r.url) if "/layers/prediction/tiles/" in r.url else None)

    page.evaluate("""() => { const s = document.querySelector('#retrain-minutes');
        s.append(new Option('3 s', '0.05', true, true)); }""")
    page.click("#retrain-btn")
    page.wait_for_function("() => " + DONE.format("#training-status"), timeout=180000)
    assert "succeeded" in page.locator("#training-status").inner_text()
    page.wait_for_selector("#model-list [data-model]", timeout=20000)  # the new version, listed live

    page.wait_for_function("() => !document.querySelector('#segment-btn').disabled", timeout=10000)
    page.click("#segment-btn")
    page.wait_for_function("() => " + DONE.format("#segment-status"), timeout=240000)
    assert "succeeded" in page.locator("#segment-status").inner_text()
    # The layer joins the list and the views draw its tiles, in the same document.
    page.wait_for_selector("#layer-prediction", timeout=20000)
    assert page.evaluate("() => window.__sameDocument") is True
    assert page.locator("#layer-prediction").inner_text().startswith("Predictions")
    page.wait_for_function("() => window.emViewer.session.versions.value.prediction > 0", timeout=10000)
    page.wait_for_timeout(1500)
    assert prediction_tiles, "the views never asked for a prediction tile"
    page.screenshot(path=str(SHOTS / "viewer-live-prediction-1600.png"))
    page.set_viewport_size({"width": 1280, "height": 720})
    page.wait_for_timeout(500)
    page.screenshot(path=str(SHOTS / "viewer-live-prediction-1280.png"))
    # Its solo button shows it alone over the image, and again brings the others back.
    page.click("#layer-prediction .layer-solo")
    assert not page.locator("#layer-manual input.layer-visible").is_checked()
    assert page.locator("#layer-prediction input.layer-visible").is_checked()
    page.click("#layer-prediction .layer-solo")
    assert page.locator("#layer-manual input.layer-visible").is_checked()


def test_a_report_run_elsewhere_appears_on_the_open_results_pages(
        live_app: str, celery_worker: Any, browser: Any, cast: Any, tmp_path: Path) -> None:
    from segmentation.core.phantom import make_phantom
    from segmentation.reports.services import phantom_truth_write, report_create
    from tests.factories import make_volume

    phantom = make_phantom((16, 96, 96), seed=7)
    volume = make_volume(cast.project, tmp_path, data=phantom.image, name="phantom",
                         voxel_size_nm=tuple(phantom.voxel_size_nm))
    phantom_truth_write(volume)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pages: list[Any] = []  # playwright pages, typed as loosely as the browser fixture
    for path in (f"/volumes/{volume.pk}/results/", f"/projects/{cast.project.pk}/results/"):
        page = context.new_page()
        if not pages:
            login(page, live_app, cast.annotator.username, PASSWORD)
        page.goto(f"{live_app}{path}")
        page.wait_for_selector("#no-report")
        page.evaluate("() => { window.__sameDocument = true; }")
        pages.append(page)
    page.wait_for_timeout(1000)  # both project sockets open
    # A colleague (or the voxel-size correction) starts the report; nobody here reloads.
    job = report_create(volume, cast.manager, labels_layer="truth", cells_layer="cells_truth", meshes=False)
    volume_page, project_page = pages
    volume_page.wait_for_function(f"() => document.querySelector('#run-status')?.textContent.includes('job #{job.pk}')",
                                  timeout=30000)
    for page in pages:
        page.wait_for_selector("#results-app[data-drawn=true]", timeout=180000)
        assert page.evaluate("() => window.__sameDocument") is True
        assert page.locator("#no-report").count() == 0
    assert volume_page.locator("#cell-table tbody tr").count() == phantom.cells.max()
    for size in ((1600, 1000), (1280, 720)):
        volume_page.set_viewport_size({"width": size[0], "height": size[1]})
        volume_page.wait_for_timeout(500)
        volume_page.screenshot(path=str(SHOTS / f"results-live-report-{size[0]}.png"))
