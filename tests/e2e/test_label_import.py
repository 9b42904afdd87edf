"""Label import in real chromium: a value -> class mapping on the project page, an upload run by a real
worker, the refusal naming an unmapped value, and Undo taking the import out again."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

from annotations.imaging import omezarr
from annotations.job_kinds import LABELS
from annotations.models import Stroke
from annotations.storage import volume_zarr_path
from emportal.jobs.models import Job
from tests.conftest import login
from tests.factories import PASSWORD, make_volume

pytestmark = [pytest.mark.e2e, pytest.mark.services]

SHAPE = (3, 48, 64)
MITO, NUCLEUS = 4, 2
SHOTS = Path(os.environ.get("EMPORTAL_SCREENSHOTS", "")) if os.environ.get("EMPORTAL_SCREENSHOTS") else None


def _labels(extra: int | None = None) -> np.ndarray:
    labels = np.zeros(SHAPE, np.uint16)
    labels[:, 4:20, 4:30] = 1
    labels[:, 26:44, 34:60] = 2
    if extra is not None:
        labels[2, 0, 0] = extra
    return labels


def _layer(volume: Any) -> np.ndarray:
    return np.asarray(omezarr.open_label_level(volume_zarr_path(volume), "manual", 0)[:])


def _wait_status(page: Any, needle: str) -> str:
    page.wait_for_function("(n) => document.querySelector('#labels-form .status').textContent.includes(n)",
                           arg=needle, timeout=60000)
    return page.locator("#labels-form .status").inner_text()


def test_a_label_file_comes_in_through_the_mapping_and_undo_takes_it_out(
        live_app: str, celery_worker: Any, browser: Any, cast: Any, tmp_path: Path) -> None:
    volume = make_volume(cast.project, tmp_path, data=np.zeros(SHAPE, np.uint8), name="bx1-crop")
    bad = tmp_path / "from-ilastik-3.tif"
    tifffile.imwrite(bad, _labels(extra=3), photometric="minisblack")
    good = tmp_path / "from-ilastik.tif"
    tifffile.imwrite(good, _labels(), photometric="minisblack")

    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    login(page, live_app, cast.annotator.username, PASSWORD)
    page.goto(f"{live_app}/projects/{cast.project.pk}/")
    form = page.locator("#labels-form")
    rows = form.locator(".mapping-rows tbody tr")
    assert rows.count() == 2 and rows.nth(0).locator("input").input_value() == "1"
    rows.nth(0).locator("select").select_option("mitochondrion")
    rows.nth(1).locator("select").select_option("nucleus")

    form.locator("input[name=file]").set_input_files(str(bad))
    form.locator("button[type=submit]").click()
    text = _wait_status(page, "does not name")
    assert "from-ilastik-3.tif holds values the mapping does not name: 3" in text
    assert not _layer(volume).any() and not Stroke.objects.exists()

    form.locator("input[name=file]").set_input_files(str(good))
    form.locator("button[type=submit]").click()
    text = _wait_status(page, "labelled voxels")
    job = Job.objects.filter(kind=LABELS, state=Job.State.SUCCEEDED).get()
    assert f"imported from-ilastik.tif into layer manual: {int((_labels() != 0).sum())} labelled voxels" in text
    assert "nucleus" in text and "mitochondrion" in text
    assert np.array_equal(_layer(volume), np.select([_labels() == 1, _labels() == 2], [MITO, NUCLEUS], 0))
    assert form.locator(".status a").get_attribute("href") == f"/volumes/{volume.pk}/"
    if SHOTS is not None:
        page.locator("#labels-form").scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "issue24-label-import-1600x1000.png"))
        page.set_viewport_size({"width": 1280, "height": 720})
        page.locator("#labels-form .undo-import").scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "issue24-label-import-1280x720.png"))

    form.locator(".undo-import").click()
    _wait_status(page, "undone")
    assert not _layer(volume).any()
    assert not Stroke.objects.get(uuid=job.result["stroke"]).active
