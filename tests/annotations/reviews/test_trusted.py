"""Approved review items become training labels: TrainingLabels fills them in and the labels hash covers them."""
from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pytest

from annotations import strokes
from annotations.models import LabelClass, Role
from annotations.reviews.models import ReviewAssignment
from segmentation.core.training_labels import TrainingLabels, TrustedLabels, labels_hash
from segmentation.modelloop.labels import training_labels_for
from tests.annotations.reviews.conftest import new_review

pytestmark = pytest.mark.django_db


def _approve(api: Any, review: dict[str, Any], kind: str, key: int) -> None:
    ReviewAssignment.objects.filter(pk=review["id"]).update(state="in_review")
    response = api.post("reviewer", f"/api/reviews/{review['id']}/items/", {"kind": kind, "key": key,
                                                                             "decision": "approve"})
    assert response.status_code == 200, response.content


def test_approved_slices_and_cells_fill_the_unlabeled_manual_voxels(api: Any, volume: Any, cast: Any) -> None:
    strokes.stroke_apply(volume, cast.annotator, Role.ANNOTATOR, {
        "uuid": str(uuid.uuid4()), "layer": "manual", "axis": "z", "index": 2, "points": [[5, 5]], "radius": 2,
        "value": 3, "mode": "paint"})
    before, *_, record_before = training_labels_for(volume)
    assert record_before == [] and set(np.unique(before[2]).tolist()) == {0, 3}

    slices = new_review(api, volume)  # prediction, slices 1..3
    cells = new_review(api, volume, scope="cells", layer="cells_auto", cells=[7, 9])
    _approve(api, slices, "slice", 2)
    _approve(api, cells, "cell", 9)
    labels, values, _, cell_name, record = training_labels_for(volume)
    assert record == [{"assignment": slices["id"], "layer": "prediction", "slices": [2], "cells": []},
                      {"assignment": cells["id"], "layer": "cells_auto", "slices": [], "cells": [9]}]
    plane = labels[2]
    painted = before[2] == 3
    assert (plane[painted] == 3).all()  # manual wins where it is painted
    assert (plane[:20][~painted[:20]] == 2).all() and (plane[20:][~painted[20:]] != 0).all()
    cell_value = LabelClass.objects.get(project=volume.project, kind="instance").value
    assert cell_name is not None and values[cell_name] == cell_value
    assert (labels[4][25:35, 30:50] == cell_value).all()  # approved cell 9 on a slice not approved
    assert not labels[4][:25].any() and not labels[1].any()  # cell 7 and slice 1 are not approved
    assert labels_hash(labels, [2, 4], [], trusted=record) != labels_hash(before, [2, 4], [])


def test_trusted_labels_never_overwrite_the_inputs_and_check_their_shape() -> None:
    manual = np.zeros((2, 3, 3), np.uint16)
    manual[0, 0, 0] = 5
    reviewed = np.full((2, 3, 3), 2, np.uint16)
    labels = TrainingLabels(manual, trusted=[TrustedLabels(reviewed, "labels", slices=frozenset({0}))])
    assert labels[0].tolist() == [[5, 2, 2], [2, 2, 2], [2, 2, 2]] and not labels[1].any()
    assert manual.sum() == 5 and (reviewed == 2).all()
    with pytest.raises(ValueError, match="shape"):
        TrainingLabels(manual, trusted=[TrustedLabels(np.zeros((1, 3, 3)), "labels")])
    with pytest.raises(ValueError, match="kind"):
        TrainingLabels(manual, trusted=[TrustedLabels(reviewed, "colours")])


@pytest.mark.slow
def test_a_real_retrain_records_the_approved_items_and_their_hash(cast: Any, tmp_path: Any) -> None:
    import torch

    from segmentation.models import ModelVersion
    from tests.annotations.reviews.conftest import Api, write_layer
    from tests.segmentation.modelloop.test_retrain import _retrain
    from tests.segmentation.phantom_volumes import phantom_volume

    torch.set_num_threads(1)
    pv = phantom_volume(cast.project, tmp_path)
    write_layer(pv.volume, "prediction", pv.truth)
    plain = _retrain(pv.volume, cast.annotator, max_steps=2, from_scratch=True)
    assert plain.state == "succeeded", plain.message
    api = Api(cast)
    review = new_review(api, pv.volume, z0=4, z1=6)
    _approve(api, review, "slice", 4)
    trusted = _retrain(pv.volume, cast.annotator, max_steps=2, from_scratch=True)
    assert trusted.state == "succeeded", trusted.message
    first, second = ModelVersion.objects.order_by("id")
    assert first.config["trusted"] == []
    assert second.config["trusted"] == [{"assignment": review["id"], "layer": "prediction", "slices": [4],
                                         "cells": []}]
    assert 4 in second.config["train_slices"] + second.config["val_slices"]
    assert 4 not in first.config["train_slices"] + first.config["val_slices"]
    assert first.labels_hash != second.labels_hash
