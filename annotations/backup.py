"""Backup and restore of everything a lab would lose: the database rows and the media store.

A backup is one .tar.gz holding `db.json` (Django's dumpdata, natural keys) and `media/`
(volumes, label layers, models, reports). Restore refuses to overwrite a database that
holds projects unless told to, and never extracts a path outside MEDIA_ROOT.

Rows are stored under their model's label (``app_label.model``). Models that moved to another
app keep their table, but a backup made before the move names them by the old label; restore
reads those under the new one (:data:`MOVED_MODELS`).
"""
from __future__ import annotations

import io
import json
import shutil
import tarfile
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.db import transaction

from annotations import pyramid_updates
from annotations.models import Project

EXCLUDE = ["contenttypes", "auth.permission", "sessions", "admin.logentry"]

# Model labels of older backups -> the label the model has now (same table, same fields).
MOVED_MODELS = {
    **{f"annotations.{name}": f"reviews.{name}"
       for name in ("reviewassignment", "reviewitem", "comment", "auditevent", "notification")},
    "segmentation.job": "jobs.job",
}


def backup_write(out: Path) -> Path:
    """Write a backup archive to `out` (written beside it first, then renamed into place)."""
    out = Path(out)
    pyramid_updates.flush()  # strokes this process acknowledged are in the label pyramids
    tmp = out.with_name(out.name + ".partial")
    dump = io.StringIO()
    excludes = [arg for label in EXCLUDE for arg in ("--exclude", label)]
    call_command("dumpdata", "--natural-foreign", "--natural-primary", *excludes, stdout=dump)
    payload = dump.getvalue().encode()
    with tarfile.open(tmp, "w:gz") as tar:
        info = tarfile.TarInfo("db.json")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
        media = Path(settings.MEDIA_ROOT)
        if media.exists():
            tar.add(media, arcname="media")
    tmp.replace(out)
    return out


def backup_restore(archive: Path, *, force: bool = False) -> None:
    """Replace the database content and MEDIA_ROOT with those of `archive`."""
    if Project.objects.exists() and not force:
        raise ValueError("the database already holds projects; restore with --force to replace them")
    media = Path(settings.MEDIA_ROOT)
    with tempfile.TemporaryDirectory(dir=media.parent) as tmp:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(tmp, filter="data")  # refuses absolute paths, '..' and links out
        db_json = Path(tmp) / "db.json"
        if not db_json.exists():
            raise ValueError(f"{archive} is not an EM Portal backup (no db.json)")
        _relabel_moved_models(db_json)
        with transaction.atomic():
            call_command("flush", "--noinput", verbosity=0)
            call_command("loaddata", str(db_json), verbosity=0)
        restored = Path(tmp) / "media"
        if media.exists():
            shutil.rmtree(media)
        if restored.exists():
            shutil.move(str(restored), str(media))
        else:
            media.mkdir(parents=True)


def _relabel_moved_models(db_json: Path) -> None:
    """Rewrite the rows of `db_json` stored under a label in MOVED_MODELS to the model's label now."""
    rows = json.loads(db_json.read_text())
    if not isinstance(rows, list):
        raise ValueError("db.json is not a list of rows")
    moved = 0
    for row in rows:
        label = row.get("model") if isinstance(row, dict) else None
        if isinstance(label, str) and label.lower() in MOVED_MODELS:
            row["model"] = MOVED_MODELS[label.lower()]
            moved += 1
    if moved:
        db_json.write_text(json.dumps(rows))
