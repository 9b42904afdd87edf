"""Model versions leave one install and arrive in another: the model file with its provenance,
its ONNX export, and the import of such a file as a new (inactive) version of a project.

The model file (``segmentation.core.modelfile``) already holds the weights, classes and
hierarchy, scale, input slices, normalisation and thresholds; what only the database knows
(which labels trained it, on which volume of which project, its validation Dice) is written
into its ``meta["provenance"]`` on the way out, and read back on the way in.
"""
from __future__ import annotations

import io
import os
import tempfile
import uuid
from pathlib import Path
from typing import Any

import torch
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from rest_framework import status

from emportal.errors import ApplicationError
from segmentation.core.modelfile import FORMAT, export_onnx, load_model
from segmentation.modelloop.storage import model_weights_path, models_dir
from segmentation.models import ModelVersion


def model_version_provenance(model: ModelVersion) -> dict[str, Any]:
    """What the database knows of where a version came from, as plain JSON."""
    return {
        "labels_sha256": model.labels_hash,
        "labeled_voxels": model.labeled_voxels,
        "val_dice": model.val_dice,
        "project": model.project.name,
        "volume": model.volume.name if model.volume else None,
        "version": model.pk,
        "parent": model.parent_id,
        "trained_by": model.created_by.username if model.created_by else None,
        "created": model.created.isoformat() if model.created else None,
        "imported_from": (model.config or {}).get("imported_from"),
    }


def _payload(model: ModelVersion) -> dict[str, Any]:
    if not model_weights_path(model).is_file():
        raise ApplicationError(f"the weights file of model v{model.pk} is gone", code="model_file_missing",
                               status_code=status.HTTP_404_NOT_FOUND)
    try:
        payload = torch.load(model_weights_path(model), map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise ApplicationError(f"the weights of model v{model.pk} cannot be read on the server",
                               code="model_unreadable", status_code=status.HTTP_503_SERVICE_UNAVAILABLE) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ApplicationError(f"the weights of model v{model.pk} are not a {FORMAT} file",
                               code="model_unreadable", status_code=status.HTTP_503_SERVICE_UNAVAILABLE)
    meta = dict(payload.get("meta") or {})
    meta["provenance"] = {**dict(meta.get("provenance") or {}), **model_version_provenance(model)}
    return {**payload, "meta": meta}


def model_version_file(model: ModelVersion) -> bytes:
    """The version's model file, its provenance filled in from the database."""
    buffer = io.BytesIO()
    torch.save(_payload(model), buffer)
    return buffer.getvalue()


def model_version_onnx(model: ModelVersion) -> bytes:
    """The version as ONNX (see :func:`segmentation.core.modelfile.export_onnx`)."""
    trained = load_model(_payload(model))
    with tempfile.TemporaryDirectory(dir=settings.FILE_UPLOAD_TEMP_DIR) as tmp:
        return export_onnx(trained, Path(tmp) / "model.onnx").read_bytes()


def model_version_import(project: Any, user: Any, upload: UploadedFile) -> ModelVersion:
    """A model file from another install as a new, inactive version of ``project``.

    Its classes must be the project's, by name and value (predictions are written as
    those values); anything else is refused before a row or file exists.
    """
    dest = models_dir() / f"import-{uuid.uuid4().hex}.pt"
    tmp = dest.with_name(dest.name + ".partial")
    with tmp.open("wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    try:
        try:
            trained = load_model(tmp)
        except ValueError as exc:
            raise ApplicationError(f"{upload.name!r} is not a model file of EM Portal ({exc})",
                                   code="not_a_model") from None
        ours = dict(project.label_classes.values_list("name", "value"))
        differ = {name: value for name, value in trained.classes.values.items() if ours.get(name) != value}
        if differ:
            raise ApplicationError(
                "the model's classes are not this project's: "
                + ", ".join(f"{n}={v} (project: {ours.get(n, 'none')})" for n, v in sorted(differ.items())),
                code="model_classes_mismatch", detail={"model": trained.classes.values, "project": ours})
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    provenance = dict(trained.meta.get("provenance") or {})
    return ModelVersion.objects.create(
        project=project, volume=None, parent=None, job=None,
        weights=dest.relative_to(Path(settings.MEDIA_ROOT)).as_posix(),
        classes=trained.classes.values, hierarchy=trained.classes.parents,
        labels_hash=str(provenance.get("labels_sha256") or "")[:64],
        labeled_voxels=int(provenance.get("labeled_voxels") or 0),
        val_dice={str(k): float(v) for k, v in dict(provenance.get("val_dice") or {}).items()
                  if isinstance(v, (int, float))},
        config={"imported_from": {k: provenance.get(k) for k in ("project", "volume", "version", "trained_by",
                                                                  "created")},
                "file": upload.name, "scale": trained.scale, "in_slices": trained.config.in_slices,
                "tta": bool(trained.meta.get("tta")), "thresholds": trained.meta.get("thresholds") or {},
                "z_blend": trained.meta.get("z_blend") or {}},
        created_by=user, active=False)
