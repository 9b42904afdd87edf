from __future__ import annotations

import numpy as np
import pytest

from segmentation.core.classes import ClassSpec, default_parents, parse_classes

VALUES = {"background": 1, "cell": 2, "nucleus": 3, "nucleolus": 4, "mitochondrion": 5}


def _row(spec: ClassSpec, value: int) -> tuple[dict[str, float], dict[str, float]]:
    t, w = spec.targets(np.array([value], np.uint8))
    return ({h: float(t[j, 0]) for j, h in enumerate(spec.heads)}, {h: float(w[j, 0]) for j, h in enumerate(spec.heads)})


def test_it_parses_class_lists_and_refuses_bad_ones():
    assert parse_classes("background=1, mitochondrion=2") == {"background": 1, "mitochondrion": 2}
    for bad in ("mito", "a=1,b=1", "a=0", "a=x", "a=1,a=2"):
        with pytest.raises(ValueError):
            parse_classes(bad)


def test_it_nests_the_papers_classes_only_when_the_parent_exists():
    assert default_parents(["nucleolus", "nucleus", "cell", "lysosome"]) == {
        "nucleolus": "nucleus", "nucleus": "cell", "cell": None, "lysosome": "cell"}
    assert default_parents(["mitochondrion", "nucleus"]) == {"mitochondrion": None, "nucleus": None}


def test_it_makes_painted_nucleolus_positive_for_nucleus_and_cell_too():
    spec = ClassSpec.build(VALUES)
    t, w = _row(spec, VALUES["nucleolus"])
    assert t == {"cell": 1.0, "nucleus": 1.0, "nucleolus": 1.0, "mitochondrion": 0.0}
    assert all(v == 1.0 for v in w.values())


def test_it_makes_a_painted_parent_negative_for_its_children_unless_told_to_ignore_them():
    t, w = _row(ClassSpec.build(VALUES), VALUES["nucleus"])
    assert t["nucleolus"] == 0.0 and w["nucleolus"] == 1.0
    assert t["cell"] == 1.0 and t["mitochondrion"] == 0.0
    t, w = _row(ClassSpec.build(VALUES, descendants="ignore"), VALUES["nucleus"])
    assert w["nucleolus"] == 0.0 and w["mitochondrion"] == 1.0 and w["cell"] == 1.0


def test_it_makes_painted_background_negative_for_every_head_and_ignores_unlabeled():
    spec = ClassSpec.build(VALUES)
    t, w = _row(spec, 1)
    assert set(t.values()) == {0.0} and set(w.values()) == {1.0}
    _, w0 = _row(spec, 0)
    assert set(w0.values()) == {0.0}


def test_it_counts_unpainted_voxels_of_complete_slices_as_background():
    spec = ClassSpec.build({"background": 1, "mito": 2})
    labels = np.array([[0, 2], [0, 2]], np.uint8)
    t, w = spec.targets(labels, complete=np.array([[True], [False]]))
    assert w[0].tolist() == [[1.0, 1.0], [0.0, 1.0]]
    assert t[0].tolist() == [[0.0, 1.0], [0.0, 1.0]]


def test_it_keeps_nucleolus_inside_nucleus_when_composing_labels():
    spec = ClassSpec.build({"background": 1, "nucleus": 2, "nucleolus": 3})
    probs = np.array([[0.9, 0.2, 0.9, 0.1], [0.8, 0.9, 0.3, 0.1]], np.float32)  # heads: nucleus, nucleolus
    assert spec.compose(probs).tolist() == [3, 1, 2, 1]


def test_it_thresholds_each_head_at_its_own_value_and_unnamed_heads_at_one_half():
    spec = ClassSpec.build({"background": 1, "nucleus": 2, "nucleolus": 3})
    probs = np.array([[0.9, 0.6, 0.6], [0.65, 0.65, 0.4]], np.float32)  # heads: nucleus, nucleolus
    masks = spec.head_masks(probs, threshold={"nucleus": 0.7})
    assert masks.tolist() == [[True, False, False], [True, False, False]]  # nucleolus (0.5) still nested


def test_it_gives_unrelated_overlapping_classes_to_the_more_probable_one():
    spec = ClassSpec.build({"background": 1, "mitochondrion": 2, "lysosome": 3})
    probs = np.array([[0.9, 0.6], [0.7, 0.8]], np.float32)
    assert spec.compose(probs).tolist() == [2, 3]


def test_it_refuses_cycles_and_unknown_parents():
    with pytest.raises(ValueError, match="cycle"):
        ClassSpec.build({"a": 1, "b": 2}, {"a": "b", "b": "a"})
    with pytest.raises(ValueError, match="parent"):
        ClassSpec.build({"a": 1}, {"a": "zz"})


def test_it_names_label_values_that_belong_to_no_class():
    spec = ClassSpec.build({"background": 1, "mito": 2})
    with pytest.raises(ValueError, match=r"\[7\]"):
        spec.check_labels(np.array([0, 1, 2, 7]))


def test_it_survives_a_round_trip_through_a_dict():
    spec = ClassSpec.build(VALUES, descendants="ignore")
    assert ClassSpec.from_dict(spec.to_dict()) == spec
