"""A small volume with a prediction layer and a cells layer, and helpers to call the review API."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from django.test import Client

from annotations.imaging import omezarr
from annotations.layers import layer_create
from annotations.models import LabelLayer
from annotations.storage import volume_zarr_path
from tests.factories import gradient_volume, make_volume

SHAPE = (6, 40, 60)


def write_layer(volume: Any, name: str, data: np.ndarray, *, kind: str = LabelLayer.Kind.LABELS) -> LabelLayer:
    """Create (or reuse) a non-editable layer and fill it, the way a job output lands."""
    layer = layer_create(volume, name, kind=kind, editable=False)
    dest = volume_zarr_path(volume)
    arr = omezarr.open_label_level(dest, name, 0, mode="r+")
    arr[:] = data.astype(arr.dtype)
    omezarr.update_label_pyramid(dest, name)
    LabelLayer.objects.filter(pk=layer.pk).update(version=layer.version + 1, max_value=int(data.max()))
    layer.refresh_from_db()
    return layer


@dataclass
class Api:
    """A logged-in client per role, with JSON helpers."""

    cast: Any

    def client(self, who: str) -> Client:
        client = Client()
        client.force_login(getattr(self.cast, who))
        return client

    def get(self, who: str, url: str, **params: Any) -> Any:
        return self.client(who).get(url, params)

    def post(self, who: str, url: str, body: Any = None) -> Any:
        return self.client(who).post(url, body or {}, content_type="application/json")


@pytest.fixture
def api(cast: Any) -> Api:
    return Api(cast)


@pytest.fixture
def volume(cast: Any, tmp_path: Any) -> Any:
    vol = make_volume(cast.project, tmp_path, data=gradient_volume(SHAPE))
    prediction = np.zeros(SHAPE, np.uint16)
    prediction[:, :20, :] = 2  # nucleus on the top half
    prediction[:, 20:, :] = 4  # mitochondrion on the bottom half
    write_layer(vol, "prediction", prediction)
    cells = np.zeros(SHAPE, np.uint32)
    cells[1:4, 5:15, 5:25] = 7
    cells[2:5, 25:35, 30:50] = 9
    write_layer(vol, "cells_auto", cells, kind=LabelLayer.Kind.INSTANCES)
    return vol


def new_review(api: Api, volume: Any, **extra: Any) -> dict[str, Any]:
    body = {"volume": volume.pk, "layer": "prediction", "scope": "slices", "z0": 1, "z1": 4,
            "reviewer": "reviewer", "fixer": "annotator", "due": "2030-01-31", "note": "check the membranes",
            **extra}
    response = api.post("manager", f"/api/projects/{volume.project_id}/reviews/", body)
    assert response.status_code == 201, response.content
    return response.json()
