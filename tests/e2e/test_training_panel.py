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
    assert "Segment the volume" in page.locator("#suggestions-panel").inner_text()
