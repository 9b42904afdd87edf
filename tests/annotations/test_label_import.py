"""Label import (annotations/label_import.py): mapping, refusals, one undoable stroke, the audit trail,
the REST endpoint per role and the import_labels command."""
from __future__ import annotations

import io
import json
import shutil
import tracemalloc
from io import StringIO
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import tifffile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client

from annotations import label_import, layers, strokes
from annotations.imaging import chunkio, omezarr
from annotations.job_kinds import LABELS
from annotations.label_import import label_import_local, label_import_run, label_mapping_parse, map_block
from annotations.models import LabelLayer, Stroke, StrokeBlock, Volume
from annotations.reviews.audit import audit_trail
from annotations.reviews.models import AuditEvent
from annotations.storage import volume_zarr_path
from annotations.strokes import layer_replay, stroke_apply, stroke_redo, stroke_undo
from emportal.errors import ApplicationError
from emportal.jobs.models import Job
from emportal.jobs.services import job_running
from tests.factories import make_volume

pytestmark = pytest.mark.django_db

SHAPE = (4, 40, 60)
MITO, NUCLEUS, ENDOSOME = 4, 2, 5  # the paper's class values (annotations/defaults.py)


def _file_labels() -> np.ndarray:
    """A label file as another tool writes it: 1 = mitochondria, 2 = nuclei, 0 = unlabelled."""
    labels = np.zeros(SHAPE, np.uint16)
    labels[:, 5:15, 5:25] = 1
    labels[1:3, 20:35, 30:55] = 2
    return labels


def _tif(path: Path, data: np.ndarray) -> Path:
    tifffile.imwrite(path, data, photometric="minisblack")
    return path


def _layer(volume: Volume, name: str = "manual") -> np.ndarray:
    return np.asarray(omezarr.open_label_level(volume_zarr_path(volume), name, 0)[:])


@pytest.fixture
def volume(cast: Any, tmp_path: Path) -> Volume:
    return make_volume(cast.project, tmp_path, data=np.zeros(SHAPE, np.uint8))


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks and undo parts far smaller than the volume, so every path is blockwise."""
    monkeypatch.setattr(label_import, "BLOCK_VOXELS", 2**12)
    monkeypatch.setattr(strokes, "REPLAY_PART_VOXELS", 2**11)


def _paint(volume: Volume, user: Any, value: int, *, index: int = 0) -> None:
    import uuid

    from annotations.models import Role

    stroke_apply(volume, user, Role.ANNOTATOR, {"uuid": str(uuid.uuid4()), "layer": "manual", "axis": "z",
                                                "index": index, "points": [[10, 10], [10, 50]], "radius": 3,
                                                "mode": "paint", "value": value})


# --- the mapping -------------------------------------------------------------------------------

def test_a_mapping_names_classes_by_name_or_value_and_ignores_with_zero() -> None:
    classes = {"mitochondrion": MITO, "nucleus": NUCLEUS}
    assert label_mapping_parse("1=Mitochondrion, 2=2,9=ignore;3=0", classes) == {1: MITO, 2: NUCLEUS, 9: 0, 3: 0}
    assert label_mapping_parse({"1": "nucleus", 7: "none"}, classes) == {1: NUCLEUS, 7: 0}


def test_a_mapping_to_an_unknown_class_names_the_classes_there_are() -> None:
    with pytest.raises(ApplicationError, match=r"'golgi' is not a class of this project; its classes are "
                                                r"nucleus \(2\), mitochondrion \(4\)"):
        label_mapping_parse("1=golgi", {"mitochondrion": MITO, "nucleus": NUCLEUS})
    with pytest.raises(ApplicationError, match="file value 'one' in the mapping is not an integer"):
        label_mapping_parse({"one": "nucleus"}, {"nucleus": NUCLEUS})
    with pytest.raises(ApplicationError, match="mapped twice"):
        label_mapping_parse("1=nucleus,01=nucleus", {"nucleus": NUCLEUS})


def test_map_block_maps_and_reports_the_values_it_cannot_map() -> None:
    mapped, values, unmapped = map_block(np.array([[[0, 1, 2, 7]]], np.int16), {1: MITO, 7: 0})
    assert mapped.tolist() == [[[0, MITO, 0, 0]]] and values.tolist() == [0, 1, 2, 7] and unmapped.tolist() == [2]
    with pytest.raises(ValueError, match="non-integer labels"):
        map_block(np.array([[[0.5]]], np.float32), {})


# --- the service -------------------------------------------------------------------------------

def test_it_imports_mapped_classes_as_one_logged_replace_stroke(volume: Volume, cast: Any, tmp_path: Path,
                                                                small_blocks: None) -> None:
    path = _tif(tmp_path / "labels.tif", _file_labels())
    job = label_import_local(volume, path, user=cast.annotator, mapping="1=mitochondrion,2=nucleus")
    assert job.state == Job.State.SUCCEEDED, job.message
    expected = np.select([_file_labels() == 1, _file_labels() == 2], [MITO, NUCLEUS], 0)
    assert np.array_equal(_layer(volume), expected)
    [stroke] = Stroke.objects.filter(layer__volume=volume)
    assert stroke.mode == Stroke.Mode.REPLACE and stroke.active and stroke.user == cast.annotator
    assert str(stroke.uuid) == job.result["stroke"] and stroke.version == volume.layers.get(name="manual").version
    assert StrokeBlock.objects.filter(stroke=stroke).count() > 1  # logged block by block
    assert np.array_equal(layer_replay(volume, "manual"), expected)
    assert job.result["counts"] == {"nucleus": int((_file_labels() == 2).sum()),
                                    "mitochondrion": int((_file_labels() == 1).sum())}
    event = AuditEvent.objects.get(volume=volume, action="labels_imported")
    assert event.actor == cast.annotator and event.detail["uuid"] == str(stroke.uuid)
    assert event.detail["file"] == "labels.tif" and event.detail["mapping"] == {"1": MITO, "2": NUCLEUS}
    trail = audit_trail(volume)
    assert any(r["action"] == "stroke" and r["detail"]["uuid"] == str(stroke.uuid) and r["detail"]["mode"] == "replace"
               for r in trail)


def test_merge_keeps_painted_voxels_where_the_file_is_zero_and_undo_restores_the_previous_labels(
        volume: Volume, cast: Any, tmp_path: Path, small_blocks: None) -> None:
    _paint(volume, cast.annotator, ENDOSOME, index=0)
    _paint(volume, cast.annotator, ENDOSOME, index=3)
    before = _layer(volume)
    assert (before == ENDOSOME).sum() > 50
    job = label_import_local(volume, _tif(tmp_path / "l.tif", _file_labels()), user=cast.annotator,
                             mapping={"1": "mitochondrion", "2": "nucleus"})
    after = _layer(volume)
    file_says = np.select([_file_labels() == 1, _file_labels() == 2], [MITO, NUCLEUS], 0)
    assert np.array_equal(after, np.where(file_says != 0, file_says, before))
    assert ((after == ENDOSOME) & (before == ENDOSOME)).any()  # painting outside the file's labels survives

    stroke_undo(volume, cast.annotator, cast.annotator.memberships.get().role, job.result["stroke"])
    assert np.array_equal(_layer(volume), before)
    assert np.array_equal(layer_replay(volume, "manual"), before)
    stroke_redo(volume, cast.annotator, cast.annotator.memberships.get().role, job.result["stroke"])
    assert np.array_equal(_layer(volume), after)
    actions = list(AuditEvent.objects.filter(volume=volume).values_list("action", flat=True))
    assert actions == ["labels_imported", "stroke_undo", "stroke_redo"]


def test_replace_makes_the_layer_the_file_and_undo_brings_the_painting_back(
        volume: Volume, cast: Any, tmp_path: Path, small_blocks: None) -> None:
    _paint(volume, cast.annotator, ENDOSOME)
    before = _layer(volume)
    job = label_import_local(volume, _tif(tmp_path / "l.tif", _file_labels()), user=cast.manager,
                             mapping="1=mitochondrion,2=nucleus", mode="replace")
    assert not (_layer(volume) == ENDOSOME).any()
    stroke_undo(volume, cast.manager, cast.manager.memberships.get().role, job.result["stroke"])
    assert np.array_equal(_layer(volume), before)


def test_unmapped_values_refuse_the_import_naming_them_and_lose_nothing(volume: Volume, cast: Any, tmp_path: Path,
                                                                        small_blocks: None) -> None:
    _paint(volume, cast.annotator, ENDOSOME)
    before, version = _layer(volume), volume.layers.get(name="manual").version
    labels = _file_labels()
    labels[3, 39, 59] = 7
    labels[0, 0, 0] = 3
    job = label_import_local(volume, _tif(tmp_path / "l.tif", labels), mapping="1=mitochondrion")
    assert job.state == Job.State.FAILED
    assert "holds values the mapping does not name: 2, 3, 7; map each to a class, or to 0" in job.message
    assert np.array_equal(_layer(volume), before)
    assert Stroke.objects.filter(layer__volume=volume).count() == 1 and not StrokeBlock.objects.exists()
    assert volume.layers.get(name="manual").version == version
    assert not AuditEvent.objects.filter(action="labels_imported").exists()

    ignored = label_import_local(volume, _tif(tmp_path / "l.tif", labels), mapping="1=mitochondrion,2=0,3=ignore,7=0")
    assert ignored.state == Job.State.SUCCEEDED, ignored.message
    assert set(np.unique(_layer(volume))) == {0, MITO, ENDOSOME}


def test_an_unknown_class_or_a_wrong_shape_is_refused_before_any_job(volume: Volume, cast: Any,
                                                                      tmp_path: Path) -> None:
    _paint(volume, cast.annotator, ENDOSOME)
    before = _layer(volume)
    with pytest.raises(ApplicationError, match="'golgi' is not a class of this project"):
        label_import_local(volume, _tif(tmp_path / "l.tif", _file_labels()), mapping="1=golgi")
    with pytest.raises(ApplicationError) as refused:
        label_import_local(volume, _tif(tmp_path / "small.tif", np.zeros((4, 40, 59), np.uint16)), mapping="")
    assert refused.value.code == "shape_mismatch"
    assert refused.value.message.startswith("small.tif has shape 4 x 40 x 59 (z x y x x) but volume 'vol' is "
                                            "4 x 40 x 60")
    assert not Job.objects.filter(kind=LABELS).exists()
    assert np.array_equal(_layer(volume), before) and Stroke.objects.count() == 1


def test_cell_instance_labels_keep_their_ids_in_a_new_instances_layer(volume: Volume, cast: Any, tmp_path: Path,
                                                                      small_blocks: None) -> None:
    cells = np.zeros(SHAPE, np.uint32)  # ids past 65535: a uint32 file, which images may not be
    cells[:, 2:20, 2:20] = 300
    cells[:, 22:38, 30:58] = 70000
    path = tmp_path / "cells.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("seg/cells", data=cells)
    with pytest.raises(ApplicationError, match="keep their values as cell ids; give no mapping"):
        label_import_local(volume, path, layer="cells_in", kind="instances", mapping="300=nucleus", dataset="seg/cells")
    job = label_import_local(volume, path, user=cast.annotator, layer="cells_in", kind="instances",
                             dataset="seg/cells")
    assert job.state == Job.State.SUCCEEDED, job.message
    layer = volume.layers.get(name="cells_in")
    assert layer.kind == LabelLayer.Kind.INSTANCES and layer.max_value == 70000
    assert np.array_equal(_layer(volume, "cells_in"), cells)
    assert job.result["counts"] == {"cells": 2} and job.result["voxels"] == int((cells != 0).sum())
    with pytest.raises(ApplicationError, match="layer 'manual' holds classes, not cell ids"):
        label_import_local(volume, path, layer="manual", kind="instances", dataset="seg/cells")


def test_ngff_labels_of_an_ome_zarr_come_in_from_the_data_root(volume: Volume, cast: Any, tmp_path: Path,
                                                                settings: Any) -> None:
    """Another volume's OME-Zarr, with its NGFF label group 'manual', as a lab would bring it."""
    _paint(volume, cast.annotator, ENDOSOME)
    (tmp_path / "o").mkdir()
    other = make_volume(cast.project, tmp_path / "o", data=np.zeros(SHAPE, np.uint8), name="other")
    settings.DATA_ROOT = str(tmp_path / "data")
    shutil.copytree(volume_zarr_path(volume), tmp_path / "data" / "painted.ome.zarr")
    job = label_import.label_import_from_path(other, "painted.ome.zarr", user=cast.annotator,
                                              mapping={str(ENDOSOME): "endosome"})
    with job_running(job.pk) as ctx:  # the worker's part, here
        label_import_run(ctx)
    job.refresh_from_db()
    assert job.state == Job.State.SUCCEEDED, job.message
    assert np.array_equal(_layer(other), _layer(volume))


def _peaks(cast: Any, tmp_path: Path, shape: tuple[int, int, int]) -> tuple[int, int]:
    """Peak traced memory of a dense import of `shape`, and of its undo."""
    volume = make_volume(cast.project, tmp_path, data=np.zeros(shape, np.uint8), name=f"big{shape[0]}")
    labels = (np.indices(shape).sum(axis=0) % 3).astype(np.uint16)  # dense: every block holds 0, 1 and 2
    path = _tif(tmp_path / f"dense{shape[0]}.tif", labels)
    tracemalloc.start()
    try:
        job = label_import_local(volume, path, mapping="1=mitochondrion,2=nucleus", mode="replace")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert job.state == Job.State.SUCCEEDED, job.message
    level1 = np.asarray(omezarr.open_label_level(volume_zarr_path(volume), "manual", 1)[:])
    assert set(np.unique(level1)) == {0, MITO, NUCLEUS}  # the coarser levels followed
    role = cast.manager.memberships.get().role
    tracemalloc.start()
    try:
        stroke_undo(volume, None, role, job.result["stroke"])
        _, undo_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert not _layer(volume).any()
    return peak, undo_peak


def test_an_import_and_its_undo_hold_blocks_in_memory_not_the_volume(cast: Any, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(label_import, "BLOCK_VOXELS", 2**15)
    monkeypatch.setattr(strokes, "REPLAY_PART_VOXELS", 2**15)
    monkeypatch.setattr(chunkio.chunk_cache, "budget", 2**19)  # the decoded-chunk cache is bounded on its own
    small = _peaks(cast, tmp_path, (4, 520, 520))  # two pyramid levels
    large = _peaks(cast, tmp_path, (16, 520, 520))  # 4x the voxels: the mapped volume alone is 33 MiB as int64
    assert large[0] < 1.5 * small[0] and large[1] < 1.5 * small[1], (small, large)
    assert large[0] < 4 * 2**20 and large[1] < 4 * 2**20, large


# --- REST --------------------------------------------------------------------------------------

def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_endpoint_refuses_viewers_and_hides_the_volume_from_outsiders(volume: Volume, cast: Any,
                                                                          tmp_path: Path, settings: Any) -> None:
    settings.DATA_ROOT = str(tmp_path)
    _tif(tmp_path / "l.tif", _file_labels())
    url = f"/api/volumes/{volume.pk}/labels/import/"
    body = {"path": "l.tif", "mapping": {"1": "mitochondrion", "2": "nucleus"}}
    assert _client(cast.viewer).post(url, body, content_type="application/json").status_code == 403
    assert _client(cast.outsider).post(url, body, content_type="application/json").status_code == 404
    assert not Job.objects.filter(kind=LABELS).exists()
    for role in ("annotator", "reviewer", "manager"):
        Job.objects.filter(kind=LABELS).update(state=Job.State.SUCCEEDED)  # one active import per volume
        response = _client(cast.by_role(role)).post(url, body, content_type="application/json")
        assert response.status_code == 202, response.content
        job = Job.objects.get(pk=response.json()["id"])
        assert job.kind == LABELS and job.created_by == cast.by_role(role)
        assert job.params["mapping"] == {"1": MITO, "2": NUCLEUS} and job.params["layer"] == "manual"


def test_an_upload_with_a_mapping_runs_as_a_job_and_undo_over_rest_restores(volume: Volume, cast: Any) -> None:
    client = _client(cast.annotator)
    data = _file_labels()
    raw = io.BytesIO()
    tifffile.imwrite(raw, data, photometric="minisblack")
    upload = SimpleUploadedFile("from-ilastik.tif", raw.getvalue())
    response = client.post(f"/api/volumes/{volume.pk}/labels/import/",
                           {"file": upload, "mapping": json.dumps({"1": "mitochondrion", "2": "ignore"})})
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["id"])
    with job_running(job.pk) as ctx:
        label_import_run(ctx)
    job.refresh_from_db()
    assert job.state == Job.State.SUCCEEDED, job.message
    assert "from-ilastik.tif" in job.message and not Path(job.params["path"]).parent.exists()
    assert np.array_equal(_layer(volume), np.where(data == 1, MITO, 0))
    undo = client.post(f"/api/volumes/{volume.pk}/strokes/{job.result['stroke']}/undo/")
    assert undo.status_code == 200 and not _layer(volume).any()


def test_the_endpoint_refuses_bad_files_paths_shapes_and_classes_with_a_message(volume: Volume, cast: Any,
                                                                              tmp_path: Path, settings: Any) -> None:
    settings.DATA_ROOT = str(tmp_path / "data")
    (tmp_path / "data").mkdir()
    _tif(tmp_path / "data" / "small.tif", np.zeros((2, 8, 8), np.uint16))
    _tif(tmp_path / "outside.tif", _file_labels())
    client = _client(cast.annotator)
    url = f"/api/volumes/{volume.pk}/labels/import/"

    def error(body: Any, **kw: Any) -> tuple[int, dict[str, Any]]:
        r = client.post(url, body, **kw)
        return r.status_code, r.json()["error"]

    status, err = error({"file": SimpleUploadedFile("labels.txt", b"1 2 3")})
    assert status == 400 and err["code"] == "unsupported_format" and "'labels.txt'" in err["message"]
    status, err = error({"path": "../outside.tif"}, content_type="application/json")
    assert status == 400 and err["code"] == "path_refused"
    status, err = error({"path": "small.tif"}, content_type="application/json")
    assert status == 400 and err["code"] == "shape_mismatch" and "2 x 8 x 8" in err["message"] \
        and "4 x 40 x 60" in err["message"]
    status, err = error({"path": "small.tif", "mapping": "1=golgi"}, content_type="application/json")
    assert status == 400 and err["code"] == "unknown_class"
    status, err = error({}, content_type="application/json")
    assert status == 400 and "either a file or a path" in json.dumps(err)
    for layer in ("prediction", "cells_truth"):  # the app's outputs, whether made yet or not
        status, err = error({"path": "small.tif", "layer": layer}, content_type="application/json")
        assert status == 409 and err["code"] == "read_only_layer", layer
    layers.layer_create(volume, "prediction")
    status, err = error({"path": "small.tif", "layer": "prediction"}, content_type="application/json")
    assert status == 409 and err["code"] == "read_only_layer"
    status, err = error({"path": "small.tif", "layer": "cells", "kind": "labels"}, content_type="application/json")
    assert status == 400 and err["code"] == "invalid_layer" and "cell ids" in err["message"]
    assert not Job.objects.filter(kind=LABELS).exists()


# --- the command -------------------------------------------------------------------------------

def test_import_labels_command_maps_values_and_names_unmapped_ones(volume: Volume, cast: Any, tmp_path: Path) -> None:
    path = _tif(tmp_path / "l.tif", _file_labels())
    with pytest.raises(CommandError, match="label import failed: l.tif holds values the mapping does not name: 2"):
        call_command("import_labels", str(path), "--volume", str(volume.pk), "--map", "1=mitochondrion",
                     stdout=StringIO(), stderr=StringIO())
    assert not _layer(volume).any()
    out = StringIO()
    call_command("import_labels", str(path), "--volume", str(volume.pk), "--layer", "manual", "--map",
                 "1=mitochondrion,2=nucleus", "--user", "annotator", stdout=out, stderr=StringIO())
    assert "imported l.tif into layer manual" in out.getvalue()
    expected = np.select([_file_labels() == 1, _file_labels() == 2], [MITO, NUCLEUS], 0)
    assert np.array_equal(_layer(volume), expected)
    assert Stroke.objects.get(layer__volume=volume).user == cast.annotator
    with pytest.raises(CommandError, match="'golgi' is not a class"):
        call_command("import_labels", str(path), "--volume", str(volume.pk), "--map", "1=golgi",
                     stdout=StringIO(), stderr=StringIO())
