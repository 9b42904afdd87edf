"""The project page in real chromium: importing from the server's data folder."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

from annotations.job_kinds import IMPORT
from emportal.jobs.models import Job
from tests.conftest import login
from tests.factories import PASSWORD, make_volume

pytestmark = [pytest.mark.e2e, pytest.mark.services]


@pytest.fixture
def data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data root of this test's own, handed to the server through its environment."""
    root = tmp_path / "data"
    (root / "lab").mkdir(parents=True)
    tifffile.imwrite(root / "lab" / "stack.tif", np.zeros((2, 32, 32), np.uint8), photometric="minisblack")
    monkeypatch.setenv("DATA_ROOT", str(root))
    return root


def test_the_data_folder_form_queues_the_import_and_says_so(data_root: Path, live_app: str, browser: Any,
                                                            cast: Any) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    login(page, live_app, cast.manager.username, PASSWORD)
    page.goto(f"{live_app}/projects/{cast.project.pk}/")
    posted: list[str] = []
    page.on("request", lambda r: posted.append(r.url) if r.method == "POST" else None)
    form = page.locator("#path-form")
    form.locator("input[name=path]").fill("lab/stack.tif")
    form.locator("input[name=name]").fill("from-the-folder")
    form.locator("button[type=submit]").click()
    page.wait_for_function("() => document.querySelector('#path-form .status').textContent.trim() !== ''",
                           timeout=10000)
    assert "stack.tif does not state its voxel size" in form.locator(".status").inner_text()
    assert not Job.objects.exists()

    form.locator("input[name=voxel_size_nm]").fill("10,4,4")
    form.locator("button[type=submit]").click()
    form.locator(".status a").wait_for(timeout=10000)
    assert posted == [f"{live_app}/api/projects/{cast.project.pk}/volumes/import-path/"] * 2
    job = Job.objects.get(kind=IMPORT)
    assert form.locator(".status").inner_text().startswith(f"Import job #{job.pk} queued")
    assert job.params["path"] == str(data_root / "lab" / "stack.tif")
    assert job.params["voxel_size_nm"] == [10.0, 4.0, 4.0]


def test_a_refused_path_shows_why(data_root: Path, live_app: str, browser: Any, cast: Any) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    login(page, live_app, cast.manager.username, PASSWORD)
    page.goto(f"{live_app}/projects/{cast.project.pk}/")
    form = page.locator("#path-form")
    form.locator("input[name=path]").fill("lab/nothing-here.tif")
    form.locator("button[type=submit]").click()
    page.wait_for_function("() => document.querySelector('#path-form .status').textContent.trim() !== ''",
                           timeout=10000)
    assert "does not exist" in form.locator(".status").inner_text()
    assert not Job.objects.exists()


def test_a_manager_corrects_a_voxel_size_in_the_volume_table(live_app: str, browser: Any, cast: Any,
                                                             tmp_path: Path) -> None:
    volume = make_volume(cast.project, tmp_path, voxel_size_nm=(1.0, 1.0, 1.0))
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    login(page, live_app, cast.manager.username, PASSWORD)
    page.goto(f"{live_app}/projects/{cast.project.pk}/")
    form = page.locator(".voxel-form")
    assert form.locator("input").input_value() == "1,1,1"
    form.locator("input").fill("40,5.9,5.9")
    form.locator("button").click()
    page.wait_for_function("() => document.querySelector('.voxel-form .status').textContent !== ''", timeout=10000)
    assert form.locator(".status").inner_text() == "saved"
    volume.refresh_from_db()
    assert volume.voxel_size_nm == (40.0, 5.9, 5.9)
    page.screenshot(path=str(tmp_path / "project-voxel-size.png"))

    form.locator("input").fill("40,0,5.9")
    form.locator("button").click()
    page.wait_for_function("() => document.querySelector('.voxel-form .status').textContent !== 'saved'",
                           timeout=10000)
    assert "voxel_size_nm" in form.locator(".status").inner_text() or "greater" in form.locator(".status").inner_text()
    volume.refresh_from_db()
    assert volume.voxel_size_nm == (40.0, 5.9, 5.9)


def test_a_viewer_sees_the_voxel_size_but_no_form(live_app: str, browser: Any, cast: Any, tmp_path: Path) -> None:
    make_volume(cast.project, tmp_path, voxel_size_nm=(8.0, 4.0, 4.0))
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    login(page, live_app, cast.viewer.username, PASSWORD)
    page.goto(f"{live_app}/projects/{cast.project.pk}/")
    assert page.locator(".voxel-form").count() == 0
    assert "8 × 4 × 4" in page.locator("#volumes").inner_text()


def test_an_import_shows_its_progress_and_joins_the_table_without_a_reload(
    data_root: Path, live_app: str, celery_worker: Any, browser: Any, cast: Any
) -> None:
    tifffile.imwrite(data_root / "lab" / "bx2.tif", np.zeros((24, 512, 512), np.uint8) + 90,
                     photometric="minisblack")
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    login(page, live_app, cast.manager.username, PASSWORD)
    page.goto(f"{live_app}/projects/{cast.project.pk}/")
    assert "No volumes yet" in page.locator("#volumes-section").inner_text()
    page.evaluate("""() => {
        window.__notReloaded = true;
        window.__seen = [];
        new MutationObserver(() => document.querySelectorAll('#imports-live li').forEach(
            (li) => window.__seen.push([li.dataset.state, li.textContent]))
        ).observe(document.getElementById('imports-live'), {subtree: true, childList: true, attributes: true,
                                                              characterData: true});
    }""")
    form = page.locator("#path-form")
    form.locator("input[name=path]").fill("lab/bx2.tif")
    form.locator("input[name=name]").fill("Bx2 live")
    form.locator("input[name=voxel_size_nm]").fill("4,4,4")
    form.locator("button[type=submit]").click()

    page.locator("#imports-live li").wait_for(timeout=30000)
    page.locator("#volumes a", has_text="Bx2 live").wait_for(timeout=120000)
    assert page.evaluate("window.__notReloaded") is True  # the table changed in place
    assert "24 × 512 × 512" in page.locator("#volumes").inner_text()
    job = Job.objects.get(kind=IMPORT)
    seen = page.evaluate("window.__seen")
    assert all(text.startswith(f"Import #{job.pk}: ") for _, text in seen)
    assert [state for state, _ in seen][-1] == "succeeded"
    assert any(state == "running" for state, _ in seen)  # progress was shown while it ran
    page.screenshot(path=str(data_root.parent / "project-live-import.png"))
