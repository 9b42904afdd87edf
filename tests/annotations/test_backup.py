"""A backup holds everything: restoring it brings back projects, strokes, layers, models and reports."""
from __future__ import annotations

import io
import json
import shutil
import tarfile
import uuid
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from annotations.imaging import omezarr
from annotations.models import Project, Role, Stroke, Volume
from annotations.reviews.assignments import assignment_create
from annotations.reviews.comments import comment_add
from annotations.reviews.models import AuditEvent, Comment, Notification, ReviewAssignment
from annotations.storage import volume_zarr_path
from annotations.strokes import layer_replay, stroke_apply
from emportal.jobs.models import Job
from segmentation.models import FeatureReport, ModelVersion
from tests.factories import make_volume

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_project_survives_backup_and_restore(cast: Any, tmp_path: Path) -> None:
    volume = make_volume(cast.project, tmp_path)
    stroke_apply(volume, cast.annotator, Role.ANNOTATOR, {
        "uuid": str(uuid.uuid4()), "axis": "z", "index": 1, "points": [[50, 50], [80, 90]], "radius": 4,
        "value": cast.project.label_classes.get(name="nucleus").value, "mode": "paint"})
    weights = Path(settings.MEDIA_ROOT) / "models" / "1.pt"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"weights")
    ModelVersion.objects.create(project=cast.project, volume=volume, weights="models/1.pt", val_dice={"nucleus": 0.9})
    FeatureReport.objects.create(volume=volume, labels_layer="manual", cells_layer="cells", n_cells=3)
    painted = np.asarray(omezarr.open_label_level(volume_zarr_path(volume), "manual", 0)[:])

    archive = tmp_path / "backup.tar.gz"
    call_command("backup", str(archive), stdout=StringIO())
    call_command("flush", "--noinput", verbosity=0)
    shutil.rmtree(settings.MEDIA_ROOT)
    call_command("restore", str(archive), stdout=StringIO())

    project = Project.objects.get(name="Bx1")
    restored = Volume.objects.get(project=project)
    assert project.memberships.count() == 4 and Stroke.objects.count() == 1
    assert np.array_equal(np.asarray(omezarr.open_label_level(volume_zarr_path(restored), "manual", 0)[:]), painted)
    assert np.array_equal(layer_replay(restored, "manual"), painted)
    assert ModelVersion.objects.get().val_dice == {"nucleus": 0.9} and weights.read_bytes() == b"weights"
    assert FeatureReport.objects.get().n_cells == 3


def test_restore_will_not_overwrite_a_live_database_unless_forced(cast: Any, tmp_path: Path) -> None:
    archive = tmp_path / "backup.tar.gz"
    call_command("backup", str(archive), stdout=StringIO())
    with pytest.raises(CommandError, match="--force"):
        call_command("restore", str(archive), stdout=StringIO())
    assert Project.objects.filter(name="Bx1").exists()


def test_an_archive_that_is_not_a_backup_is_refused(cast: Any, tmp_path: Path) -> None:
    import tarfile

    bogus = tmp_path / "bogus.tar.gz"
    with tarfile.open(bogus, "w:gz") as tar:
        tar.add(__file__, arcname="notes.txt")
    with pytest.raises(CommandError, match="not an EM Portal backup"):
        call_command("restore", str(bogus), "--force", stdout=StringIO())
    assert Project.objects.filter(name="Bx1").exists()


def _as_written_before_the_app_moves(archive: Path, out: Path) -> Path:
    """`archive` with its review rows under `annotations.*` and its jobs under `segmentation.job`,
    the labels those models had when a backup of that time was written."""
    old = {"reviews.": "annotations.", "jobs.job": "segmentation.job"}
    with tarfile.open(archive, "r:gz") as tar:
        members = [(m, tar.extractfile(m).read() if m.isfile() else None) for m in tar.getmembers()]
    with tarfile.open(out, "w:gz") as tar:
        for member, data in members:
            if member.name == "db.json" and data is not None:
                rows = json.loads(data)
                for row in rows:
                    for new, before in old.items():
                        if row["model"].startswith(new):
                            row["model"] = before + row["model"][len(new):]
                data = json.dumps(rows).encode()
                member.size = len(data)
            tar.addfile(member, io.BytesIO(data) if data is not None else None)
    return out


def test_a_backup_from_before_the_reviews_and_jobs_apps_restores_their_rows(cast: Any, tmp_path: Path) -> None:
    volume = make_volume(cast.project, tmp_path)
    assignment_create(cast.project, cast.manager, volume=volume.pk, layer="manual", scope="slices", z0=0, z1=2,
                      cells=None, reviewer=cast.reviewer.username, fixer=cast.annotator.username)
    comment_add(volume, cast.reviewer, Role.REVIEWER, z=1, y=2, x=3, text="look here")
    counts = {model: model.objects.count() for model in (ReviewAssignment, Comment, AuditEvent, Notification)}
    assert all(counts.values()), counts
    archive = tmp_path / "backup.tar.gz"
    call_command("backup", str(archive), stdout=StringIO())
    old = _as_written_before_the_app_moves(archive, tmp_path / "old.tar.gz")
    with tarfile.open(old, "r:gz") as tar:
        labels = {row["model"] for row in json.loads(tar.extractfile("db.json").read())}
    assert {"annotations.reviewassignment", "annotations.comment", "segmentation.job"} <= labels
    assert not any(label.startswith(("reviews.", "jobs.")) for label in labels)

    call_command("flush", "--noinput", verbosity=0)
    shutil.rmtree(settings.MEDIA_ROOT)
    call_command("restore", str(old), stdout=StringIO())

    assert {model: model.objects.count() for model in counts} == counts
    assert Comment.objects.get().text == "look here"
    assert ReviewAssignment.objects.get().volume.name == volume.name
    assert Job.objects.filter(kind="import", volume__name=volume.name).exists()
