"""Layer diffs: numbers on a volume whose answer is known, and the overlay tile's pixels."""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import pytest

from annotations.defaults import hex_to_rgba
from annotations.models import LabelClass, LabelLayer
from annotations.reviews.diff import DiffCounts, disagreement_plane, disagreement_tile_labels
from tests.annotations.reviews.conftest import SHAPE, write_layer

pytestmark = pytest.mark.django_db


def _corrected() -> np.ndarray:
    """The fixture's prediction with a known change: a 10 x 10 nucleus square becomes mitochondrion on z = 2,
    and slice 5 left unlabeled (a sparse layer)."""
    out = np.zeros(SHAPE, np.uint16)
    out[:, :20, :] = 2
    out[:, 20:, :] = 4
    out[2, 0:10, 0:10] = 4
    out[5] = 0
    return out


def test_class_dice_counts_only_where_both_layers_are_labeled(api: Any, volume: Any) -> None:
    write_layer(volume, "corrected", _corrected())
    got = api.get("viewer", f"/api/volumes/{volume.pk}/diff/", a="prediction", b="corrected").json()
    compared = 5 * 40 * 60  # slice 5 is unlabeled in b
    assert got["compared_voxels"] == compared and got["disagree_voxels"] == 100
    nucleus, mito = got["classes"]["nucleus"], got["classes"]["mitochondrion"]
    a_nuc, a_mito = 5 * 20 * 60, 5 * 20 * 60
    assert (nucleus["a_voxels"], nucleus["b_voxels"]) == (a_nuc, a_nuc - 100)
    assert nucleus["dice"] == pytest.approx(2 * (a_nuc - 100) / (2 * a_nuc - 100), abs=1e-6)
    assert (mito["a_voxels"], mito["b_voxels"]) == (a_mito, a_mito + 100)
    assert mito["dice"] == pytest.approx(2 * a_mito / (2 * a_mito + 100), abs=1e-6)
    assert got["slices"] == [{"z": z, "disagree": 100 if z == 2 else 0} for z in range(6)]
    assert got["cells"] == []
    part = api.get("viewer", f"/api/volumes/{volume.pk}/diff/", a="prediction", b="corrected", z0=3, z1=5).json()
    assert part["disagree_voxels"] == 0 and part["compared_voxels"] == 2 * 40 * 60


def test_cells_are_matched_by_overlap_and_scored_by_dice(api: Any, volume: Any) -> None:
    other = np.zeros(SHAPE, np.uint32)
    other[1:4, 5:15, 5:15] = 70  # half of cell 7 (10 of its 20 columns)
    other[2:5, 25:35, 30:50] = 90  # cell 9 exactly
    other[1, 38:40, 0:2] = 55  # a speck that matches nothing in a
    write_layer(volume, "cells_b", other, kind=LabelLayer.Kind.INSTANCES)
    got = api.get("viewer", f"/api/volumes/{volume.pk}/diff/", a="cells_auto", b="cells_b").json()
    cells = {c["a"]: c for c in got["cells"]}
    size7, half7 = 3 * 10 * 20, 3 * 10 * 10
    assert cells[7]["b"] == 70 and cells[7]["dice"] == pytest.approx(2 * half7 / (size7 + half7), abs=1e-6)
    assert cells[9] == {"a": 9, "b": 90, "dice": 1.0}
    assert got["disagree_voxels"] == (size7 - half7) + 4  # the unmatched half of 7 and the speck
    assert got["classes"]["cell"]["a_voxels"] == size7 + 3 * 10 * 20


@pytest.mark.parametrize("params, code", [
    ({"a": "prediction", "b": "nope"}, "unknown_layer"),
    ({"a": "prediction"}, "unknown_layer"),
    ({"a": "prediction", "b": "prediction"}, "same_layer"),
    ({"a": "prediction", "b": "cells_auto"}, "kind_mismatch"),
    ({"a": "prediction", "b": "manual", "z0": 4, "z1": 9}, "off_volume"),
    ({"a": "prediction", "b": "manual", "z0": "x"}, "invalid"),
])
def test_bad_diff_requests_are_refused(api: Any, volume: Any, params: dict[str, Any], code: str) -> None:
    response = api.get("viewer", f"/api/volumes/{volume.pk}/diff/", **params)
    assert response.status_code == 400 and response.json()["error"]["code"] == code


def _png(response: Any) -> np.ndarray:
    bgra = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_UNCHANGED)
    return bgra[..., [2, 1, 0, 3]]  # RGBA


def test_the_diff_tile_paints_disagreements_in_bs_class_colour_and_nothing_else(api: Any, volume: Any) -> None:
    write_layer(volume, "corrected", _corrected())
    url = f"/api/volumes/{volume.pk}/diff/tiles/z/2/0/0/0.png"
    response = api.get("viewer", url, a="prediction", b="corrected")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    rgba = _png(response)
    assert rgba.shape == (40, 60, 4)
    mito = hex_to_rgba(LabelClass.objects.get(project=volume.project, name="mitochondrion").color)
    assert (rgba[0:10, 0:10] == np.array(mito)).all()
    assert rgba[..., 3].sum() == 100 * 255  # transparent everywhere else
    unlabeled = _png(api.get("viewer", f"/api/volumes/{volume.pk}/diff/tiles/z/5/0/0/0.png", a="prediction",
                             b="corrected"))
    assert unlabeled[..., 3].max() == 0  # b is unlabeled on z = 5: nothing to disagree about
    side = _png(api.get("viewer", f"/api/volumes/{volume.pk}/diff/tiles/x/3/0/0/0.png", a="prediction",
                        b="corrected"))
    assert side.shape == (6, 40, 4) and side[2, 0:10, 3].min() == 255 and side[..., 3].sum() == 10 * 255
    bad = api.get("viewer", url, a="prediction", b="nope")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "unknown_layer"
    assert api.get("outsider", url, a="prediction", b="corrected").status_code == 404


def test_counts_and_tile_labels_agree_on_a_random_plane() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 4, (2, 17, 23))
    counts = DiffCounts("labels")
    counts.add(0, a, b)
    mask = disagreement_plane(a, b, kind="labels")
    assert counts.disagree == int(mask.sum()) == int(np.count_nonzero(disagreement_tile_labels(a, b, kind="labels")))
    assert counts.compared == int(((a > 0) & (b > 0)).sum())
    with pytest.raises(ValueError, match="kind"):
        DiffCounts("colours")


def test_the_instance_diff_tile_shows_only_foreground_mismatches_on_slices_both_layers_label(api: Any,
                                                                                           volume: Any) -> None:
    other = np.zeros(SHAPE, np.uint32)
    other[1:4, 5:15, 5:15] = 70  # the left half of cell 7 (a: z 1..3, y 5..14, x 5..24)
    write_layer(volume, "cells_b", other, kind=LabelLayer.Kind.INSTANCES)
    tile = _png(api.get("viewer", f"/api/volumes/{volume.pk}/diff/tiles/z/1/0/0/0.png", a="cells_auto",
                        b="cells_b"))
    assert (tile[5:15, 15:25, 3] == 255).all() and tile[..., 3].sum() == 10 * 10 * 255
    # z = 4 holds cell 9 in a but nothing in b: not compared, so nothing is drawn
    quiet = _png(api.get("viewer", f"/api/volumes/{volume.pk}/diff/tiles/z/4/0/0/0.png", a="cells_auto",
                         b="cells_b"))
    assert quiet[..., 3].max() == 0
    side = _png(api.get("viewer", f"/api/volumes/{volume.pk}/diff/tiles/y/10/0/0/0.png", a="cells_auto",
                        b="cells_b"))
    assert side.shape == (6, 60, 4) and side[..., 3].sum() == 3 * 10 * 255  # rows z 1..3, x 15..24
