"""Intensity statistics and the 3D, masked, multi-region GLCM."""
from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.feature import graycomatrix, graycoprops

from segmentation.core.features.texture import (
    GLCM_PROPS,
    glcm_matrices,
    glcm_props,
    intensity_stats,
    quantise,
)

IN_PLANE = ((0, 0, 1), (0, 1, 0), (0, 1, 1), (0, 1, -1))


def test_it_matches_skimage_on_a_single_plane_with_the_four_in_plane_directions() -> None:
    rng = np.random.default_rng(1)
    grey = rng.integers(0, 8, (1, 24, 30))
    counts = glcm_matrices(grey, np.zeros_like(grey), {"all": [0]}, levels=8, directions=IN_PLANE)["all"]
    ref = graycomatrix(grey[0].astype(np.uint8), [1], [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4], levels=8, symmetric=True)
    summed = ref.sum(axis=3, keepdims=True).astype(np.float64)
    np.testing.assert_array_equal(counts, summed[:, :, 0, 0])
    mine = glcm_props(counts)
    for prop in GLCM_PROPS:
        expected = graycoprops(summed / summed.sum(), prop)[0, 0]
        assert mine[prop] == pytest.approx(expected), prop


def test_it_ignores_pairs_that_leave_the_region() -> None:
    rng = np.random.default_rng(2)
    grey = rng.integers(0, 16, (10, 10, 10))
    code = np.full(grey.shape, -1)
    code[3:7, 3:7, 3:7] = 0
    grey[3:7, 3:7, 3:7] = 5  # flat inside, noise outside
    props = glcm_props(glcm_matrices(grey, code, {"r": [0]}, levels=16)["r"])
    assert props["contrast"] == 0 and props["ASM"] == pytest.approx(1.0) and props["homogeneity"] == pytest.approx(1.0)


def test_it_splits_one_pass_into_nested_regions() -> None:
    rng = np.random.default_rng(3)
    grey = rng.integers(0, 8, (8, 12, 12))
    code = np.zeros(grey.shape, int)
    code[2:6, 2:8, 2:8] = 1  # nucleus
    code[3:5, 4:6, 4:6] = 2  # nucleolus inside it
    code[0, 0, :] = -1  # outside the cell
    regions = {"cell": [0, 1, 2], "nucleus": [1, 2], "nucleolus": [2]}
    together = glcm_matrices(grey, code, regions, levels=8)
    for name, codes in regions.items():
        alone = glcm_matrices(grey, np.where(np.isin(code, codes), 0, -1), {name: [0]}, levels=8)[name]
        np.testing.assert_array_equal(together[name], alone)


def test_it_gives_stripes_more_contrast_than_a_smooth_ramp() -> None:
    z, y, x = np.mgrid[:6, :16, :16]
    stripes = (x % 2) * 7
    ramp = x // 2
    code = np.zeros(stripes.shape, int)
    striped = glcm_props(glcm_matrices(stripes, code, {"r": [0]}, levels=8)["r"])
    smooth = glcm_props(glcm_matrices(ramp, code, {"r": [0]}, levels=8)["r"])
    assert striped["contrast"] > 10 * smooth["contrast"]
    assert striped["homogeneity"] < smooth["homogeneity"]


def test_it_gives_nan_properties_to_a_region_without_pairs() -> None:
    grey = np.zeros((3, 3, 3), int)
    code = np.full(grey.shape, -1)
    code[1, 1, 1] = 0
    props = glcm_props(glcm_matrices(grey, code, {"r": [0]}, levels=4)["r"])
    assert all(math.isnan(v) for v in props.values())


def test_it_quantises_a_fixed_range_into_equal_bins() -> None:
    values = np.array([-10, 0, 7.99, 8, 255, 300])
    assert quantise(values, levels=32, intensity_range=(0, 256)).tolist() == [0, 0, 0, 1, 31, 31]
    with pytest.raises(ValueError, match=r"\(5, 5\)"):
        quantise(values, levels=32, intensity_range=(5, 5))


def test_it_reports_intensity_statistics_like_numpy() -> None:
    values = np.random.default_rng(4).normal(100, 15, 1000)
    stats = intensity_stats(values)
    assert stats["mean"] == pytest.approx(values.mean()) and stats["std"] == pytest.approx(values.std())
    assert stats["p05"] == pytest.approx(np.percentile(values, 5)) and stats["max"] == values.max()
    assert all(math.isnan(v) for v in intensity_stats(np.array([])).values())
