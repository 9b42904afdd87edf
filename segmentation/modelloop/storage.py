"""Where model versions keep their weights: MEDIA_ROOT/models/, one file per version (and one per pretrained encoder)."""
from __future__ import annotations

from pathlib import Path

from django.conf import settings

from emportal.jobs.models import Job
from segmentation.models import ModelVersion


def models_dir() -> Path:
    """MEDIA_ROOT/models, where every version's weights live (created on first use)."""
    path = Path(settings.MEDIA_ROOT) / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def model_weights_path(model: ModelVersion) -> Path:
    """The weights file of a version (its path is stored relative to MEDIA_ROOT)."""
    return Path(settings.MEDIA_ROOT) / model.weights


def retrain_weights_path(job: Job) -> Path:
    """Where a retrain job writes its weights: named after the job, not the version row,
    so that weights whose row never committed (the worker died first) can be found."""
    return models_dir() / f"job-{int(job.pk)}.pt"


def pretrain_encoder_path(job: Job) -> Path:
    """Where a pretrain job writes the project's encoder, named after the job (see retrain_weights_path)."""
    return models_dir() / f"encoder-job-{int(job.pk)}.pt"


def job_weights_remove(final: Path) -> list[Path]:
    """Delete a job's weights file `final` and its ``.tmp`` sibling (written first, then
    renamed); returns the paths removed."""
    removed = []
    for path in (final, final.with_name(final.name + ".tmp")):
        if path.exists():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
