"""Nothing needs a reload: what a job makes appears in the open page through its socket."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import login
from tests.factories import PASSWORD
from tests.segmentation.phantom_volumes import phantom_volume

pytestmark = [pytest.mark.e2e, pytest.mark.services]

DONE = "['succeeded', 'failed', 'cancelled'].includes(document.querySelector('{}').dataset.state)"


def test_retrain_then_segment_add_the_version_and_the_prediction_layer_to_the_open_viewer(
        live_app: str, celery_worker: Any, browser: Any, cast: Any, tmp_path: Path) -> None:
    pv = phantom_volume(cast.project, tmp_path)
    page = browser.new_context(viewport={"width": 1500, "height": 1000}).new_page()
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
    # Its solo button shows it alone over the image, and again brings the others back.
    page.click("#layer-prediction .layer-solo")
    assert not page.locator("#layer-manual input.layer-visible").is_checked()
    assert page.locator("#layer-prediction input.layer-visible").is_checked()
    page.click("#layer-prediction .layer-solo")
    assert page.locator("#layer-manual input.layer-visible").is_checked()
