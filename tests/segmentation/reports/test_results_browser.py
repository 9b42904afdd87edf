"""In real headless chromium: the results page draws its plots, its table opens the viewer,
every download reads back, the 3D view draws the cell, and an annotator runs a report."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import tifffile
import zarr
from django.conf import settings

from annotations.imaging import omezarr
from annotations.storage import volume_zarr_path
from segmentation.reports.services import report_compute
from tests.conftest import login
from tests.factories import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.services]


def _download(page: Any, selector: str) -> bytes:
    with page.expect_download() as info:
        page.click(selector)
    return Path(info.value.path()).read_bytes()


def _bar_colours(page: Any, plot: str) -> set[str]:
    return set(page.eval_on_selector_all(f"{plot} .barlayer .point path", "els => els.map(e => e.style.fill)"))


def test_a_viewer_sees_the_plots_sorts_and_filters_cells_and_reads_back_every_download(
        live_app: str, browser: Any, cast: Any, phantom_volume: Any) -> None:
    report = report_compute(phantom_volume, labels_layer="truth", cells_layer="cells_truth")
    expected = pd.read_parquet(Path(settings.MEDIA_ROOT) / report.files["parquet"])
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, live_app, cast.viewer.username, PASSWORD)
    page.goto(f"{live_app}/volumes/{phantom_volume.pk}/results/")
    page.wait_for_selector("#results-app[data-drawn=true]", timeout=30000)

    # Stacked bars: one bar per cell and class with bars present, nucleus in the project's yellow.
    assert page.locator("#plot-volumes .barlayer .point path").count() >= report.n_cells
    assert "rgb(255, 212, 0)" in _bar_colours(page, "#plot-volumes")
    assert page.locator("#plot-solidity .boxlayer path").count() >= 1
    assert page.locator("#plot-fenestration .points path").count() == expected["nucleolus_fenestrated_pct"].notna().sum()
    page.click(".seg button[data-mode=pct]")
    page.wait_for_function("() => document.querySelector('#plot-volumes .ytitle').textContent.includes('%')")
    assert page.locator("#run-panel").is_hidden()

    rows = page.locator("#cell-table tbody tr")
    assert rows.count() == report.n_cells
    page.click("#cell-table th[data-column=cell_volume_um3]")
    page.click("#cell-table th[data-column=cell_volume_um3]")
    biggest = int(expected.loc[expected["cell_volume_um3"].idxmax(), "cell_id"])
    assert rows.first.get_attribute("data-cell") == str(biggest)
    page.fill("#cell-filter", "cell_id <= 3 and nucleus_count >= 0")
    assert rows.count() == 3 and page.locator("#cell-count").inner_text() == f"3 of {report.n_cells} cells"

    tables = {
        "csv": pd.read_csv(io.BytesIO(_download(page, "#download-csv"))),
        "xlsx": pd.read_excel(io.BytesIO(_download(page, "#download-xlsx")), sheet_name="cells"),
        "parquet": pd.read_parquet(io.BytesIO(_download(page, "#download-parquet"))),
    }
    for fmt, table in tables.items():
        pd.testing.assert_frame_equal(table, expected, check_dtype=fmt == "parquet", obj=fmt)
    truth = np.asarray(omezarr.open_label_level(volume_zarr_path(phantom_volume), "truth", 0)[:])
    cells = np.asarray(omezarr.open_label_level(volume_zarr_path(phantom_volume), "cells_truth", 0)[:])
    assert np.array_equal(tifffile.imread(io.BytesIO(_download(page, "#download-labels-tif"))), truth)
    assert np.array_equal(tifffile.imread(io.BytesIO(_download(page, "#download-cells-tif"))), cells)
    zipped = Path(settings.MEDIA_ROOT) / "cells.zip"
    zipped.write_bytes(_download(page, "#download-cells-zarr"))
    assert np.array_equal(zarr.open_group(zarr.storage.ZipStore(zipped, mode="r"), mode="r")["0"][:], cells)
    meshes = zipfile.ZipFile(io.BytesIO(_download(page, "#download-meshes")))
    assert len(meshes.namelist()) == report.n_cells

    # Clicking a row opens the viewer centred on that cell.
    page.fill("#cell-filter", "")
    row = expected.iloc[0]
    page.click(f"#cell-table tbody tr[data-cell='{int(row.cell_id)}'] td:nth-child(2)")
    page.wait_for_url(f"**/volumes/{phantom_volume.pk}/#*")
    state = dict(part.split("=") for part in page.url.split("#", 1)[1].split("&"))
    assert [int(state[k]) for k in "zyx"] == [round(row[f"cell_centroid_{k}"]) for k in "zyx"]
    assert errors == []


def test_the_3d_view_draws_the_cell_and_hides_a_class_on_its_toggle(
        live_app: str, browser: Any, cast: Any, phantom_volume: Any) -> None:
    report = report_compute(phantom_volume, labels_layer="truth", cells_layer="cells_truth")
    cid = report.summary["mesh_cells"][0]
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, live_app, cast.viewer.username, PASSWORD)
    page.goto(f"{live_app}/reports/{report.pk}/cells/{cid}/3d/")
    page.wait_for_selector("#cell3d-app[data-loaded=true]", timeout=30000)
    assert "cell" in page.get_attribute("#cell3d-app", "data-nodes").split(",")
    count_yellow = """() => {
        const src = document.querySelector('#c3d-canvas canvas');
        const c = document.createElement('canvas'); c.width = src.width; c.height = src.height;
        const g = c.getContext('2d'); g.drawImage(src, 0, 0);
        const d = g.getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i] > 150 && d[i + 1] > 120 && d[i + 2] < 90) n++;
        return n;
    }"""
    page.wait_for_function(f"({count_yellow})() > 200")
    page.uncheck("input[data-node=nucleus]")
    page.wait_for_function(f"({count_yellow})() < 50")
    assert page.locator("a[href$='/nucleus.ply']").count() == 1
    assert errors == []


@pytest.mark.slow
def test_an_annotator_runs_a_report_from_the_page_and_sees_it_drawn(
        live_app: str, celery_worker: Any, browser: Any, cast: Any, phantom_volume: Any) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    login(page, live_app, cast.annotator.username, PASSWORD)
    page.goto(f"{live_app}/volumes/{phantom_volume.pk}/results/")
    page.wait_for_selector("#no-report")
    assert page.locator("#run-labels").input_value() == "truth"
    assert page.locator("#run-cells").input_value() == "cells_truth"
    page.click("#run-report")
    page.wait_for_function("() => document.querySelector('#run-status').textContent.includes('job #')")
    page.wait_for_selector("#results-app[data-drawn=true]", timeout=120000)
    assert page.locator("#cell-table tbody tr").count() == phantom_volume.phantom.cells.max()
    assert page.locator("#plot-volumes .barlayer .point path").count() > 0
