"""The unseen-region protocol never scores what trained or validated the model."""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks.unseen import GAP, GUARD, split


def _truth(shape, seed=0):
    rng = np.random.default_rng(seed)
    mito = rng.random(shape) < 0.1
    return np.where(mito, 2, 1).astype(np.uint8), mito


@pytest.mark.parametrize(("name", "shape", "kind"), [
    ("cdeep3m_sbem_mito", (20, 256, 256), "slices"),
    ("drosophila_vnc_sstem", (10, 256, 256), "quadrant"),
    ("hela_sbfsem", (3, 256, 256), "pages"),
])
def test_the_unseen_region_holds_no_label_and_both_regions_are_scored(name, shape, kind):
    truth, mito = _truth(shape)
    s = split(name, truth, mito, hela_margin=10)
    labeled = s.sparse > 0
    assert s.kind == kind and labeled.any() and s.near.any() and s.unseen.any()
    assert not (labeled & s.unseen).any() and not (labeled & s.near).any() and not (s.near & s.unseen).any()
    assert np.array_equal(s.sparse[labeled], truth[labeled])  # the labels are the truth where kept


def test_a_deep_crop_is_scored_on_slices_at_least_eight_from_every_labeled_one():
    truth, mito = _truth((20, 64, 64))
    s = split("cdeep3m_sbem_mito", truth, mito)
    labeled = np.nonzero(s.sparse.any(axis=(1, 2)))[0]
    far = np.nonzero(s.unseen.any(axis=(1, 2)))[0]
    assert list(far) == list(range(15, 20)) and all(abs(int(z) - int(k)) >= GAP for z in far for k in labeled)
    assert s.unseen[far].all()  # whole slices


def test_a_short_crop_holds_out_a_quadrant_with_a_guard_band_around_it():
    truth, mito = _truth((10, 256, 256))
    s = split("drosophila_vnc_sstem", truth, mito)
    assert s.unseen[:, 128:, 128:].all() and not s.unseen[:, :128].any() and not s.unseen[:, :, :128].any()
    assert not s.sparse[5, 128 - GUARD:, 128 - GUARD:].any() and s.sparse[5, :128 - GUARD].all()
    assert not s.near[:, 128 - GUARD:, 128 - GUARD:].any()
