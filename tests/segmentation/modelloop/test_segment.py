"""Segment, suggestions, thumbnails and accept-prediction services on a tiny phantom volume."""
from __future__ import annotations

import io
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from annotations.imaging import omezarr
from annotations.layer_names import LayerName
from annotations.models import Role, Stroke
from annotations.storage import volume_zarr_path
from annotations.strokes import stroke_undo
from emportal.errors import ApplicationError
from emportal.jobs.models import Job
from emportal.jobs.services import job_running
from segmentation.modelloop import blocks, segment
from segmentation.models import ModelVersion, SegmentationRun
from tests.segmentation.modelloop.test_retrain import NO_QUEUE, _retrain
from tests.segmentation.phantom_volumes import LABELED, phantom_volume

pytestmark = pytest.mark.django_db
torch.set_num_threads(1)


def _segment(volume: Any, user: Any, **kwargs: Any) -> Job:
    job = segment.volume_segment(volume, user, **{"helpers": 0, **kwargs}, **NO_QUEUE)
    with job_running(job.pk) as ctx:
        segment.volume_segment_run(ctx)
    job.refresh_from_db()
    return job


@pytest.fixture
def pv(cast: Any, tmp_path: Path) -> Any:
    return phantom_volume(cast.project, tmp_path)


def test_segment_refuses_without_a_model(cast: Any, pv: Any) -> None:
    with pytest.raises(ApplicationError) as err:
        segment.volume_segment(pv.volume, cast.annotator, **NO_QUEUE)
    assert err.value.code == "no_model"


def test_segment_writes_a_read_only_prediction_layer_and_ranks_unlabeled_regions(cast: Any, pv: Any) -> None:
    _retrain(pv.volume, cast.annotator, max_steps=6)
    job = _segment(pv.volume, cast.annotator, k=4)
    assert job.state == Job.State.SUCCEEDED, job.message
    layer = pv.volume.layers.get(name=LayerName.PREDICTION)
    assert not layer.editable and layer.version >= 1 and job.result["version"] == layer.version
    dest = volume_zarr_path(pv.volume)
    pred = np.asarray(omezarr.open_label_level(dest, LayerName.PREDICTION, 0)[:])
    classes = set(ModelVersion.objects.get().classes.values())
    assert pred.all() and set(np.unique(pred).tolist()) <= classes  # every voxel got a class
    run = SegmentationRun.objects.get()
    assert run.job_id == job.pk and run.layer == LayerName.PREDICTION and run.model_version.active
    suggestions = run.outputs["suggestions"]
    assert len(suggestions) == 4 and all(s["z"] not in LABELED for s in suggestions)
    # the best tile first; on a volume this small later picks may be fill-ups near earlier ones,
    # listed after the spread-out picks whatever their score (segmentation.core.active)
    assert suggestions[0]["score"] == max(s["score"] for s in suggestions)
    assert len({(s["z"], s["y0"], s["x0"]) for s in suggestions}) == 4
    assert sum(run.outputs["class_voxels"].values()) + 0 <= pred.size and run.outputs["timings"]["blocks"] >= 1


def test_a_segment_that_dies_mid_write_marks_the_prediction_partial_until_a_segment_succeeds(
        cast: Any, pv: Any, monkeypatch: Any) -> None:
    from django.test import Client

    client = Client()
    client.force_login(cast.viewer)

    def shown() -> dict[str, Any]:
        return client.get(f"/api/volumes/{pv.volume.pk}/suggestions/").json()

    _retrain(pv.volume, cast.annotator)
    first = _segment(pv.volume, cast.annotator, k=2)
    assert shown()["id"] == first.result["run"] and shown()["layer_state"]["state"] == "complete"
    layer = pv.volume.layers.get(name=LayerName.PREDICTION)
    before = layer.version
    seen: list[dict[str, Any]] = []
    real = blocks._save

    def dies_after_the_first_block(*args: Any, **kwargs: Any) -> None:
        real(*args, **kwargs)
        seen.append(shown())
        raise RuntimeError("worker lost")

    monkeypatch.setattr(blocks, "_save", dies_after_the_first_block)
    failed = _segment(pv.volume, cast.annotator, k=2)
    assert failed.state == Job.State.FAILED
    assert seen[0]["id"] == first.result["run"] and seen[0]["layer_state"]["state"] == "writing"
    state = shown()["layer_state"]
    assert shown()["id"] == first.result["run"]  # the run list is unchanged, and says the layer is not its own
    assert state["state"] == "partial" and state["job"] == failed.pk and "partial" in state["message"]
    layer.refresh_from_db()
    assert layer.version > before  # tiles cached before the failed write are stale now

    monkeypatch.setattr(blocks, "_save", real)
    again = _segment(pv.volume, cast.annotator, k=2)
    assert again.state == Job.State.SUCCEEDED, again.message
    assert shown()["id"] == again.result["run"]
    assert shown()["layer_state"] == {"state": "complete", "job": again.pk, "job_state": "succeeded", "message": ""}


def test_segment_predicts_as_the_model_was_trained_to_unless_the_request_says(cast: Any, pv: Any) -> None:
    _retrain(pv.volume, cast.annotator, max_steps=6)
    trained = ModelVersion.objects.get().config["tta"]
    as_trained = _segment(pv.volume, cast.annotator, k=1)
    assert SegmentationRun.objects.get(job_id=as_trained.pk).outputs["tta"] is trained
    told = _segment(pv.volume, cast.annotator, k=1, tta=not trained)
    assert SegmentationRun.objects.get(job_id=told.pk).outputs["tta"] is (not trained)


def test_a_dismissed_suggestion_stays_dismissed(cast: Any, pv: Any) -> None:
    _retrain(pv.volume, cast.annotator)
    _segment(pv.volume, cast.annotator, k=3)
    run = SegmentationRun.objects.get()
    segment.suggestion_dismiss(run, 1, cast.annotator)
    run.refresh_from_db()
    assert [s["dismissed"] for s in run.outputs["suggestions"]] == [False, True, False]
    with pytest.raises(ApplicationError):
        segment.suggestion_dismiss(run, 3, cast.annotator)


def test_accepting_the_prediction_under_a_brush_copies_it_into_the_manual_layer_and_undo_restores(
        cast: Any, pv: Any) -> None:
    _retrain(pv.volume, cast.annotator)
    _segment(pv.volume, cast.annotator)
    dest = volume_zarr_path(pv.volume)
    pred = np.asarray(omezarr.open_label_level(dest, LayerName.PREDICTION, 0)[4])
    uid = str(uuid.uuid4())
    outcome = segment.prediction_accept(pv.volume, cast.annotator, Role.ANNOTATOR, {
        "uuid": uid, "axis": "z", "index": 4, "points": [[30, 20], [30, 60]], "radius": 5})
    manual = np.asarray(omezarr.open_label_level(dest, LayerName.MANUAL, 0)[4])
    assert np.array_equal(manual[27:34, 25:56], pred[27:34, 25:56])  # inside the brush: the prediction
    assert not manual[:20].any() and not manual[45:].any()  # outside: untouched
    stroke = Stroke.objects.get(uuid=uid)
    assert stroke.mode == Stroke.Mode.REPLACE and stroke.version == outcome.version
    stroke_undo(pv.volume, cast.annotator, Role.ANNOTATOR, uid)
    assert not np.asarray(omezarr.open_label_level(dest, LayerName.MANUAL, 0)[4]).any()


def test_viewers_cannot_accept_the_prediction(cast: Any, pv: Any) -> None:
    _retrain(pv.volume, cast.annotator)
    _segment(pv.volume, cast.annotator)
    with pytest.raises(ApplicationError) as err:
        segment.prediction_accept(pv.volume, cast.viewer, Role.VIEWER, {
            "uuid": str(uuid.uuid4()), "axis": "z", "index": 4, "points": [[30, 20]], "radius": 5})
    assert err.value.status_code == 403


def test_a_thumbnail_shows_the_region_at_the_asked_size(cast: Any, pv: Any) -> None:
    png = segment.region_thumbnail_png(pv.volume, z=3, y0=0, x0=0, y1=48, x1=96, size=64)
    img = Image.open(io.BytesIO(png))
    assert img.size == (64, 32) and img.mode == "RGB"
    grey = np.asarray(img)
    assert grey.std() > 5  # it shows the image, not a flat fill
    with pytest.raises(ApplicationError):
        segment.region_thumbnail_png(pv.volume, z=99, y0=0, x0=0, y1=8, x1=8)


def _prediction_levels(volume: Any) -> list[np.ndarray]:
    dest = volume_zarr_path(volume)
    levels = len(omezarr.label_regions(dest, LayerName.PREDICTION))
    return [np.asarray(omezarr.open_label_level(dest, LayerName.PREDICTION, level)[:]) for level in range(levels)]


def test_a_segment_cut_into_blocks_writes_the_bytes_and_ranks_the_regions_of_one_block(
        cast: Any, pv: Any, settings: Any) -> None:
    _retrain(pv.volume, cast.annotator, max_steps=6)
    whole = _segment(pv.volume, cast.annotator, k=4)
    assert whole.state == Job.State.SUCCEEDED, whole.message
    expected, first = _prediction_levels(pv.volume), SegmentationRun.objects.get(job_id=whole.pk)
    assert first.outputs["timings"]["blocks"] == 1
    parts = _segment(pv.volume, cast.annotator, k=4, block=(4, 96, 96))  # three blocks of 4 slices
    assert parts.state == Job.State.SUCCEEDED, parts.message
    second = SegmentationRun.objects.get(job_id=parts.pk)
    assert second.outputs["timings"]["blocks"] == 3 and parts.result["version"] > whole.result["version"]
    for a, b in zip(expected, _prediction_levels(pv.volume)):
        assert np.array_equal(a, b)
    assert second.outputs["suggestions"] == first.outputs["suggestions"]
    assert second.outputs["class_voxels"] == first.outputs["class_voxels"]
    assert not (Path(settings.MEDIA_ROOT) / "segment").exists() or not any((Path(settings.MEDIA_ROOT) / "segment").iterdir())


def test_a_block_size_off_the_label_chunks_fails_the_job_with_a_message(cast: Any, pv: Any) -> None:
    _retrain(pv.volume, cast.annotator)
    job = _segment(pv.volume, cast.annotator, block=(3, 96, 96))
    assert job.state == Job.State.FAILED and job.error_code == "invalid_input" and "chunk" in job.message
    with pytest.raises(ApplicationError) as err:
        segment.volume_segment(pv.volume, cast.annotator, block=(0, 96, 96), **NO_QUEUE)
    assert err.value.code == "invalid"


def test_block_pyramids_and_the_finish_equal_a_pyramid_built_from_the_whole_layer(cast: Any, tmp_path: Path) -> None:
    from annotations.layers import layer_create
    from segmentation.modelloop.blocks import _pyramid, _whole_levels, segment_plan
    from tests.factories import make_volume

    data = np.random.default_rng(0).integers(0, 255, (8, 1100, 600), dtype=np.uint8)
    volume = make_volume(cast.project, tmp_path, data=data, name="wide")
    layer_create(volume, LayerName.PREDICTION, kind="labels", editable=False)
    dest = volume_zarr_path(volume)
    labels = np.random.default_rng(1).integers(0, 4, data.shape, dtype=np.uint16)
    omezarr.open_label_level(dest, LayerName.PREDICTION, 0, mode="r+")[:] = labels
    levels = len(omezarr.label_regions(dest, LayerName.PREDICTION))
    chunks = [tuple(omezarr.open_label_level(dest, LayerName.PREDICTION, lv).chunks) for lv in range(levels)]
    plan = segment_plan(dest, volume.shape, block=(4, 512, 512))
    whole = [_whole_levels(b.box, plan.shape, chunks) for b in plan]
    assert levels == 3 and len(plan) == 12 and min(whole) == 1  # blocks fill level 1; level 2 is the finish's
    for b, n in zip(plan, whole):
        _pyramid(dest, LayerName.PREDICTION, b.box, range(1, n + 1))
    _pyramid(dest, LayerName.PREDICTION, ((0, 8), (0, 1100), (0, 600)), range(min(whole) + 1, levels))
    blockwise = [np.asarray(omezarr.open_label_level(dest, LayerName.PREDICTION, lv)[:]) for lv in range(levels)]
    omezarr.update_label_pyramid(dest, LayerName.PREDICTION)
    for lv in range(levels):
        assert np.array_equal(blockwise[lv], np.asarray(omezarr.open_label_level(dest, LayerName.PREDICTION, lv)[:]))
