"""Where a volume's files live under MEDIA_ROOT. One place, so nobody builds paths by hand."""
from __future__ import annotations

from pathlib import Path

from django.conf import settings

from annotations.models import Volume


def volume_zarr_path(volume: Volume) -> Path:
    return Path(settings.MEDIA_ROOT) / "volumes" / f"{volume.pk}.ome.zarr"


def upload_dir() -> Path:
    path = Path(settings.MEDIA_ROOT) / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path
