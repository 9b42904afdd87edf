"""TrainingLabels reads the manual layer with painted cells as the cell class, slice by slice."""
from __future__ import annotations

import numpy as np

from segmentation.core.training_labels import TrainingLabels


def test_training_labels_mark_painted_cells_as_the_cell_class_and_the_rest_of_key_slices_as_background() -> None:
    manual = np.array([[[0, 1, 2, 0]], [[0, 2, 0, 0]]], np.uint16)
    cells = np.array([[[5, 5, 5, 0]], [[0, 0, 0, 0]]], np.uint32)
    labels = TrainingLabels(manual, cells, cell_value=7, background=1)
    assert labels[0].tolist() == [[7, 7, 2, 1]] and labels.shape == (2, 1, 4)
    assert labels[1].tolist() == manual[1].tolist()  # not a key slice: the manual layer alone
    assert labels[0, 0, 1:3].tolist() == [7, 2]
    assert TrainingLabels(manual)[0].tolist() == manual[0].tolist()


def test_training_labels_over_a_plain_array_cannot_name_candidate_slices() -> None:
    assert TrainingLabels(np.zeros((3, 4, 4), np.uint8)).candidate_slices() is None  # not a zarr store
