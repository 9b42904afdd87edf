"""The label layer's OME-Zarr zip opens in ome-zarr-py as the export module says, class names included."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.test import Client

from annotations.layer_names import LayerName
from annotations.strokes import layer_write_slices
from tests.factories import make_volume

pytestmark = pytest.mark.django_db


def test_ome_zarr_py_reads_the_downloaded_zip_with_class_names(cast: Any, tmp_path: Path) -> None:
    from ome_zarr.format import FormatV04
    from ome_zarr.io import ZarrLocation
    from ome_zarr.reader import Label, Reader
    from zarr.storage import FsspecStore

    volume = make_volume(cast.project, tmp_path)
    nucleus = cast.project.label_classes.get(name="nucleus")
    plane = np.zeros((300, 520), np.uint16)
    plane[100:140, 200:260] = nucleus.value
    layer_write_slices(volume, LayerName.MANUAL, {1: plane}, user=cast.manager)
    client = Client()
    client.force_login(cast.viewer)
    response = client.get(f"/api/volumes/{volume.pk}/layers/{LayerName.MANUAL}/export.ome.zarr.zip")
    assert response.status_code == 200
    path = tmp_path / "manual.ome.zarr.zip"
    path.write_bytes(response.getvalue())  # the streamed body, joined
    # the recipe of segmentation/reports/exports.py
    store = FsspecStore.from_url(f"zip::file://{path}", read_only=True)
    nodes = list(Reader(ZarrLocation(store, fmt=FormatV04()))())
    label = next(n for n in nodes if any(isinstance(s, Label) for s in n.specs))
    assert label.metadata["properties"][nucleus.value]["name"] == "nucleus"
    level0 = np.asarray(label.data[0])
    assert level0.shape == (4, 300, 520) and np.array_equal(level0[1], plane) and not level0[0].any()
