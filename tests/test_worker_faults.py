"""A worker killed in the middle of a job: the job ends failed with a clear message, nothing
half-done is visible, and a retry on a new worker succeeds."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from django.test import Client

from annotations.models import Volume
from emportal.jobs.models import Job
from emportal.jobs.services import jobs_reap_stale
from segmentation.job_kinds import CELLS, REPORT, RETRAIN, SEGMENT
from tests.conftest import ROOT, _require_redis, _service_env
from tests.factories import volume_of

pytestmark = [pytest.mark.services]


def _start_worker(settings: Any, log: Path) -> subprocess.Popen[bytes]:
    """A worker in a process group of its own, so that killing the group kills its pool too."""
    _require_redis()
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "emportal", "worker", "-Q", "default,gpu", "-c", "1",
         "--without-gossip", "--without-mingle", "-n", f"fault-{time.time_ns()}@%h"],
        cwd=ROOT, env=_service_env(settings), stdout=log.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True)


def _wait(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_an_import_whose_worker_is_killed_fails_cleanly_and_a_retry_succeeds(
        cast: Any, transactional_db: Any, settings: Any, tmp_path: Path) -> None:
    settings.DATA_ROOT = tmp_path
    settings.JOB_STALE_SECONDS = 4
    z, y, x = np.indices((96, 768, 768), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "big.tif", ((x + y + 3 * z) % 251).astype(np.uint8), photometric="minisblack")
    client = Client()
    client.force_login(cast.annotator)
    worker = _start_worker(settings, tmp_path / "w1.log")
    try:
        job_id = client.post(f"/api/projects/{cast.project.pk}/volumes/import-path/",
                             {"path": "big.tif", "voxel_size_nm": [4, 4, 4]},
                             content_type="application/json").json()["id"]
        _wait(lambda: Job.objects.get(pk=job_id).progress > 0.05, 120, "the import to make progress")
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    job = Job.objects.get(pk=job_id)
    assert job.state == Job.State.RUNNING  # nobody told the database yet

    _wait(lambda: jobs_reap_stale() or Job.objects.get(pk=job_id).state == Job.State.FAILED, 60, "the reaper")
    job.refresh_from_db()
    assert job.state == Job.State.FAILED and job.error_code == "worker_lost" and "stopped responding" in job.message
    assert volume_of(job).state == Volume.State.FAILED
    assert client.get(f"/api/projects/{cast.project.pk}/volumes/").json() == []

    worker = _start_worker(settings, tmp_path / "w2.log")
    try:
        retry = client.post(f"/api/projects/{cast.project.pk}/volumes/import-path/",
                            {"path": "big.tif", "voxel_size_nm": [4, 4, 4]},
                            content_type="application/json").json()["id"]
        _wait(lambda: Job.objects.get(pk=retry).state in Job.FINISHED, 180, "the retry")
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
    assert Job.objects.get(pk=retry).state == Job.State.SUCCEEDED
    assert [v["name"] for v in client.get(f"/api/projects/{cast.project.pk}/volumes/").json()] == ["big"]


# ---------------------------------------------------------------- retrain, segment, cells, report
# A worker whose FAULT_TARGET ("module:attribute") stalls forever after its FAULT_CALL-th
# call (a case's `call`, 1 unless it says) returns, having written FAULT_MARKER: the
# SIGKILL then lands at a known point of the
# job (after the first block of a prediction, the first slab of cells, ...) instead of
# wherever the scheduler happened to be. The patch is made before Celery forks its pool,
# so the pool process inherits it.
_STALLING_WORKER = """
import importlib, os, sys, time
from pathlib import Path
import django
django.setup()
module_name, attribute = os.environ["FAULT_TARGET"].split(":")
owner = importlib.import_module(module_name)
*path, name = attribute.split(".")
for part in path:
    owner = getattr(owner, part)
original = getattr(owner, name)
calls = [0]
def stalled(*args, **kwargs):
    out = original(*args, **kwargs)
    calls[0] += 1
    if calls[0] == int(os.environ["FAULT_CALL"]):
        Path(os.environ["FAULT_MARKER"]).write_text(str(os.getpid()))
        time.sleep(3600)
    return out
setattr(owner, name, stalled)
from celery.__main__ import main
sys.argv = ["celery", *sys.argv[1:]]
main()
"""

OLD = 99  # what the previous prediction / cells layer held everywhere (no class or cell has this value)
TINY = {"patch": 48, "batch": 4, "base_width": 8, "depth": 3}
SHAPE = (32, 96, 96)  # two prediction blocks and two cell slabs of 16 slices


def _start_stalling_worker(settings: Any, log: Path, *, target: str, call: int, marker: Path
                           ) -> subprocess.Popen[bytes]:
    _require_redis()
    env = {**_service_env(settings), "FAULT_TARGET": target, "FAULT_CALL": str(call), "FAULT_MARKER": str(marker)}
    return subprocess.Popen(
        [sys.executable, "-c", _STALLING_WORKER, "-A", "emportal", "worker", "-Q", "default,gpu", "-c", "1",
         "--without-gossip", "--without-mingle", "-n", f"stall-{time.time_ns()}@%h"],
        cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)


def _run_here(job: Job, work: Any) -> Job:
    """Run a queued job in this process, as the worker would."""
    from emportal.jobs.services import job_running

    with job_running(job.pk) as ctx:
        work(ctx)
    job.refresh_from_db()
    assert job.state == Job.State.SUCCEEDED, (job.message, job.log[-2000:])
    return job


def _phantom(cast: Any, tmp_path: Path, *, shape: tuple[int, int, int] = SHAPE, labeled: tuple[int, ...] = (),
             keys: tuple[int, ...] = ()) -> Any:
    from annotations.layer_names import LayerName
    from annotations.layers import layer_create
    from annotations.strokes import layer_write_slices
    from segmentation.core.phantom import make_phantom
    from tests.factories import make_volume
    from tests.segmentation.phantom_volumes import project_truth

    ph = make_phantom(shape, seed=3, n_cells=2)
    volume: Any = make_volume(cast.project, tmp_path, data=ph.image, name="phantom", voxel_size_nm=(4.0, 4.0, 4.0))  # a Volume carrying .phantom
    if labeled:
        truth = project_truth(cast.project, ph.labels)
        layer_write_slices(volume, LayerName.MANUAL, {z: truth[z] for z in labeled})
    if keys:
        layer_create(volume, LayerName.CELLS, kind="instances")
        layer_write_slices(volume, LayerName.CELLS, {z: ph.cells[z].astype(np.uint32) for z in keys})
    volume.refresh_from_db()
    volume.phantom = ph
    return volume


def _train_here(volume: Any, user: Any) -> Any:
    from segmentation.modelloop.retrain import model_retrain, model_retrain_run
    from segmentation.models import ModelVersion

    job = model_retrain(volume, user, minutes=1, max_steps=2, config=TINY, enqueue=lambda job_id: None)
    _run_here(job, model_retrain_run)
    return ModelVersion.objects.get(job=job)


def _previous_layer(volume: Any, name: str, kind: str) -> Any:
    """A layer as a finished earlier job left it: OLD everywhere, its version bumped, and a run."""
    from annotations.imaging import omezarr
    from annotations.layers import layer_bump, layer_create
    from annotations.storage import volume_zarr_path
    from segmentation.models import SegmentationRun

    layer = layer_create(volume, name, kind=kind, editable=False)
    dest = volume_zarr_path(volume)
    level0 = omezarr.open_label_level(dest, name, 0, mode="r+")
    level0[:] = np.full(level0.shape, OLD, level0.dtype)
    omezarr.update_label_pyramid(dest, name)
    layer_bump(layer, max_value=OLD)
    return SegmentationRun.objects.create(volume=volume, layer=name, outputs={"kind": "previous"})


def _layer(volume: Any, name: str) -> np.ndarray:
    from annotations.imaging import omezarr
    from annotations.storage import volume_zarr_path

    return np.asarray(omezarr.open_label_level(volume_zarr_path(volume), name, 0)[:])


class _Retrain:
    """Killed while the new weights are saved, inside the transaction that creates the version."""

    kind, target = RETRAIN, "segmentation.core.modelfile:save_model"

    def setup(self, cast: Any, tmp_path: Path) -> dict[str, Any]:
        volume = _phantom(cast, tmp_path, shape=(12, 96, 96), labeled=(2, 6, 9))
        first = _train_here(volume, cast.annotator)
        return {"volume": volume, "first": first,
                "weights": (Path(_media()) / first.weights).read_bytes()}

    def start(self, client: Client, s: dict[str, Any]) -> Any:
        return client.post(f"/api/volumes/{s['volume'].pk}/retrain/",
                           {"minutes": 1, "max_steps": 2, "config": TINY}, content_type="application/json")

    def after_kill(self, client: Client, s: dict[str, Any], job: Job) -> None:
        from segmentation.models import ModelVersion

        first = s["first"]
        assert list(ModelVersion.objects.values_list("pk", "active")) == [(first.pk, True)]
        listed = client.get(f"/api/projects/{first.project_id}/models/").json()
        assert [(m["id"], m["active"]) for m in listed] == [(first.pk, True)]
        assert (Path(_media()) / first.weights).read_bytes() == s["weights"]
        # The weights the killed job saved had no row: the reaper deleted them.
        assert sorted(p.name for p in (Path(_media()) / "models").iterdir()) == [Path(first.weights).name]

    def after_retry(self, client: Client, s: dict[str, Any], job: Job) -> None:
        from segmentation.models import ModelVersion

        new = ModelVersion.objects.get(active=True)
        assert new.job_id == job.pk and new.parent_id == s["first"].pk
        assert ModelVersion.objects.count() == 2
        assert (Path(_media()) / new.weights).is_file()


class _Segment:
    """Killed after the first of two prediction blocks landed (pyramid updated, version bumped)."""

    # call 1 is the bump before the first write, call 2 the bump after the first block
    kind, target, call = SEGMENT, "segmentation.modelloop.segment:layer_bump", 2

    def setup(self, cast: Any, tmp_path: Path) -> dict[str, Any]:
        from annotations.models import LabelLayer

        volume = _phantom(cast, tmp_path, labeled=(4, 12, 20, 28))
        model = _train_here(volume, cast.annotator)
        previous = _previous_layer(volume, "prediction", "labels")
        return {"volume": volume, "model": model, "previous": previous,
                "version": LabelLayer.objects.get(volume=volume, name="prediction").version}

    def start(self, client: Client, s: dict[str, Any]) -> Any:
        return client.post(f"/api/volumes/{s['volume'].pk}/segment/", {"k": 2}, content_type="application/json")

    def after_kill(self, client: Client, s: dict[str, Any], job: Job) -> None:
        from segmentation.models import SegmentationRun

        volume = s["volume"]
        from annotations.models import LabelLayer

        assert list(SegmentationRun.objects.filter(layer="prediction").values_list("pk", flat=True)) == [
            s["previous"].pk]
        shown = client.get(f"/api/volumes/{volume.pk}/suggestions/").json()
        assert shown["id"] == s["previous"].pk
        # Each block is whole (old or new) and the run list is unchanged; the layer mixes
        # the two predictions, and the payload the viewer reads says so.
        assert shown["layer_state"]["state"] == "partial" and shown["layer_state"]["job"] == job.pk
        assert LabelLayer.objects.get(volume=volume, name="prediction").version > s["version"]
        pred = _layer(volume, "prediction")
        assert (pred[16:] == OLD).all(), "the block after the kill point changed"
        assert not (pred[:16] == OLD).any(), "the first block is not wholly the new prediction"
        s["after_kill"] = pred

    def after_retry(self, client: Client, s: dict[str, Any], job: Job) -> None:
        from segmentation.models import SegmentationRun

        pred = _layer(s["volume"], "prediction")
        assert not (pred == OLD).any()
        np.testing.assert_array_equal(pred[:16], s["after_kill"][:16])  # the killed block was the real thing
        run = SegmentationRun.objects.get(job=job)
        assert run.model_version_id == s["model"].pk
        shown = client.get(f"/api/volumes/{s['volume'].pk}/suggestions/").json()
        assert shown["id"] == run.pk and shown["layer_state"]["state"] == "complete"


class _Cells:
    """Killed after the first of two slabs of the cells layer was written."""

    kind, target = CELLS, "annotations.imaging.omezarr:update_label_pyramid"

    def setup(self, cast: Any, tmp_path: Path) -> dict[str, Any]:
        from annotations.models import LabelLayer

        volume = _phantom(cast, tmp_path, keys=(0, 16, 31))
        previous = _previous_layer(volume, "cells_auto", "instances")
        return {"volume": volume, "previous": previous,
                "version": LabelLayer.objects.get(volume=volume, name="cells_auto").version}

    def start(self, client: Client, s: dict[str, Any]) -> Any:
        return client.post(f"/api/volumes/{s['volume'].pk}/cells/", {"method": "flow"},
                           content_type="application/json")

    def after_kill(self, client: Client, s: dict[str, Any], job: Job) -> None:
        from annotations.models import LabelLayer
        from segmentation.models import SegmentationRun

        volume = s["volume"]
        assert list(SegmentationRun.objects.filter(layer="cells_auto").values_list("pk", flat=True)) == [
            s["previous"].pk]
        shown = client.get(f"/api/volumes/{volume.pk}/cells/").json()
        assert shown["id"] == s["previous"].pk
        assert shown["layer_state"]["state"] == "partial" and shown["layer_state"]["job"] == job.pk
        # Bumped before the first slab was written: no tile cached before the job looks current.
        assert LabelLayer.objects.get(volume=volume, name="cells_auto").version > s["version"]
        cells = _layer(volume, "cells_auto")
        assert (cells[16:] == OLD).all(), "the slab after the kill point changed"
        assert not (cells[:16] == OLD).any(), "the first slab is not wholly the new cells"
        s["after_kill"] = cells

    def after_retry(self, client: Client, s: dict[str, Any], job: Job) -> None:
        from annotations.models import LabelLayer

        volume = s["volume"]
        cells = _layer(volume, "cells_auto")
        assert not (cells == OLD).any()
        assert set(np.unique(cells)) - {0} == set(np.unique(volume.phantom.cells)) - {0}
        np.testing.assert_array_equal(cells[:16], s["after_kill"][:16])
        assert LabelLayer.objects.get(volume=volume, name="cells_auto").version > s["version"]
        shown = client.get(f"/api/volumes/{volume.pk}/cells/").json()
        assert shown["id"] == job.result["run"] and shown["layer_state"]["state"] == "complete"


class _Report:
    """Killed while meshing, after the tables were written into the report's hidden folder."""

    kind, target = REPORT, "segmentation.reports.services:scene_glb"

    def setup(self, cast: Any, tmp_path: Path) -> dict[str, Any]:
        from segmentation.core.phantom import make_phantom
        from segmentation.reports.services import phantom_truth_write, report_compute
        from tests.factories import make_volume

        ph = make_phantom((16, 96, 96), seed=7, n_cells=3)
        volume = make_volume(cast.project, tmp_path, data=ph.image, name="phantom", voxel_size_nm=(4.0, 4.0, 4.0))
        phantom_truth_write(volume, seed=7, phantom=ph)
        previous = report_compute(volume, labels_layer="truth", cells_layer="cells_truth", meshes=False)
        files = {fmt: (Path(_media()) / rel).read_bytes() for fmt, rel in previous.files.items()}
        return {"volume": volume, "previous": previous, "files": files}

    def start(self, client: Client, s: dict[str, Any]) -> Any:
        return client.post(f"/api/volumes/{s['volume'].pk}/reports/",
                           {"labels_layer": "truth", "cells_layer": "cells_truth"}, content_type="application/json")

    def after_kill(self, client: Client, s: dict[str, Any], job: Job) -> None:
        from segmentation.models import FeatureReport

        previous = s["previous"]
        assert list(FeatureReport.objects.values_list("pk", flat=True)) == [previous.pk]
        listed = client.get(f"/api/volumes/{s['volume'].pk}/reports/").json()
        assert [r["id"] for r in listed["reports"]] == [previous.pk] and listed["active_jobs"] == []
        for fmt, rel in previous.files.items():
            assert (Path(_media()) / rel).read_bytes() == s["files"][fmt]
        # Nothing of the killed job is left, not even its hidden .partial-<job>-* folder.
        assert sorted(p.name for p in (Path(_media()) / "reports").iterdir()) == [str(previous.pk)]

    def after_retry(self, client: Client, s: dict[str, Any], job: Job) -> None:
        from segmentation.models import FeatureReport

        report = FeatureReport.objects.get(pk=job.result["report"])
        assert report.n_cells == s["previous"].n_cells and "meshes" in report.files
        assert (Path(_media()) / report.files["csv"]).is_file()


def _media() -> str:
    from django.conf import settings as django_settings

    return str(django_settings.MEDIA_ROOT)


@pytest.mark.slow
@pytest.mark.parametrize("case", [_Retrain(), _Segment(), _Cells(), _Report()], ids=lambda c: c.kind)
def test_a_job_whose_worker_is_killed_fails_cleanly_keeps_the_previous_result_and_a_retry_succeeds(
        case: Any, cast: Any, transactional_db: Any, settings: Any, tmp_path: Path) -> None:
    settings.JOB_STALE_SECONDS = 3
    state = case.setup(cast, tmp_path)
    client = Client()
    client.force_login(cast.annotator)
    marker = tmp_path / "stalled"
    worker = _start_stalling_worker(settings, tmp_path / "w1.log", target=case.target,
                                    call=getattr(case, "call", 1), marker=marker)
    try:
        response = case.start(client, state)
        assert response.status_code == 202, response.content
        job_id = response.json()["id"]
        _wait(lambda: marker.exists() or worker.poll() is not None, 180, f"the {case.kind} job to reach {case.target}")
        assert marker.exists(), (tmp_path / "w1.log").read_text()[-3000:]
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    job = Job.objects.get(pk=job_id)
    assert job.state == Job.State.RUNNING  # nobody told the database yet

    started = time.monotonic()
    _wait(lambda: jobs_reap_stale() or Job.objects.get(pk=job_id).state == Job.State.FAILED, 60, "the reaper")
    job.refresh_from_db()
    assert job.state == Job.State.FAILED and job.error_code == "worker_lost" and "stopped responding" in job.message
    assert time.monotonic() - started < 20  # heartbeat every 10 s + JOB_STALE_SECONDS
    case.after_kill(client, state, job)

    worker = _start_worker(settings, tmp_path / "w2.log")
    try:
        response = case.start(client, state)
        assert response.status_code == 202, response.content
        retry = response.json()["id"]
        _wait(lambda: Job.objects.get(pk=retry).state in Job.FINISHED, 180, "the retry")
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
    job = Job.objects.get(pk=retry)
    assert job.state == Job.State.SUCCEEDED, (job.message, job.log[-2000:], (tmp_path / "w2.log").read_text()[-2000:])
    case.after_retry(client, state, job)
