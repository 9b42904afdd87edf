from __future__ import annotations

import numpy as np
import pytest

from segmentation.core.tracking import link_slices, slice_regions, track_regions


def test_it_labels_touching_instances_as_separate_regions() -> None:
    v = np.zeros((1, 6, 6), np.uint16)
    v[0, :, :3] = 4
    v[0, :, 3:] = 5
    regions, region_z, value = slice_regions(v)
    assert regions.max() == 2
    assert sorted(value[1:].tolist()) == [4, 5]
    assert region_z[1:].tolist() == [0, 0]


def test_it_gives_region_ids_unique_across_slices() -> None:
    v = np.zeros((3, 6, 6), bool)
    v[:, 1:3, 1:3] = True
    v[:, 4:6, 4:6] = True
    regions, region_z, _ = slice_regions(v)
    assert regions.max() == 6
    assert region_z[1:].tolist() == [0, 0, 1, 1, 2, 2]


def test_it_computes_iou_and_coverage_of_overlapping_pairs() -> None:
    a = np.zeros((4, 4), int)
    b = np.zeros((4, 4), int)
    a[:2, :2] = 1  # 4 px
    b[:2, :] = 2  # 8 px, covers a
    ia, ib, inter, iou, cov = link_slices(a, b)
    assert ia.tolist() == [1] and ib.tolist() == [2] and inter.tolist() == [4]
    assert iou[0] == pytest.approx(0.5)
    assert cov[0] == pytest.approx(1.0)


def test_it_links_each_region_to_the_largest_iou_partner() -> None:
    v = np.zeros((2, 10, 20), bool)
    v[0, 2:8, 2:8] = True  # region A
    v[1, 2:8, 3:9] = True  # B: mostly A shifted by one
    v[1, 2:8, 10:12] = True  # C: elsewhere
    r = track_regions(v)
    a = int(r.regions[0, 4, 4])
    b = int(r.regions[1, 4, 4])
    assert r.next[a].target == b
    assert r.previous[b].target == a
    assert r.next[a].iou == pytest.approx(30 / 42)


def test_it_reports_regions_without_a_link_instead_of_dropping_them() -> None:
    v = np.zeros((3, 12, 12), bool)
    v[:, 2:6, 2:6] = True  # a column linked through all slices
    v[1, 9:11, 9:11] = True  # an island in the middle slice only
    r = track_regions(v)
    assert len(r.unlinked) == 1
    u = r.unlinked[0]
    assert u.z == 1 and u.area == 4
    assert u.centroid == pytest.approx((9.5, 9.5))
    assert u.region in np.unique(r.regions)


def test_it_links_a_small_cross_section_entering_a_large_body_by_coverage() -> None:
    v = np.zeros((2, 40, 40), bool)
    v[0, 10:13, 10:13] = True  # a protrusion's cross-section, 9 px
    v[1, 0:30, 0:30] = True  # the cell body in the next slice, 900 px
    r = track_regions(v, min_iou=0.2, min_coverage=0.5)
    island = int(r.regions[0, 11, 11])
    assert r.next[island].iou < 0.2
    assert r.next[island].target == int(r.regions[1, 5, 5])
    assert not r.unlinked
    iou_only = track_regions(v, min_iou=0.2, min_coverage=1.0 - 1e-9)
    assert island in iou_only.next  # fully covered, so the coverage rule still links it


def test_it_keeps_the_best_overlap_below_threshold_as_a_weak_link() -> None:
    v = np.zeros((2, 40, 40), bool)
    v[0, 10:13, 10:13] = True
    v[1, 0:30, 11:30] = True  # covers 6 of the island's 9 pixels
    r = track_regions(v, min_iou=0.2, min_coverage=0.9)
    island = int(r.regions[0, 11, 11])
    assert island not in r.next
    assert r.weak_next[island].coverage == pytest.approx(6 / 9)
    assert [u.region for u in r.unlinked] == [island, int(r.regions[1, 5, 20])]


def test_it_refuses_thresholds_outside_zero_one() -> None:
    with pytest.raises(ValueError, match="min_iou"):
        track_regions(np.zeros((2, 4, 4), bool), min_iou=1.5)
