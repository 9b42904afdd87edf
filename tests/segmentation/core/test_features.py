"""Per-cell features against known geometry and the phantom's truth."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage as ndi

from segmentation.core.features import (
    COLUMNS,
    DEFAULT_CLASSES,
    cell_bounding_boxes,
    cell_features,
    describe_columns,
    elongations,
    fenestrations,
    object_stats,
    surface_shape,
)

NUCLEUS, NUCLEOLUS, MITO, ENDO, LYSO = (DEFAULT_CLASSES[k] for k in ("nucleus", "nucleolus", "mitochondrion", "endosome", "lysosome"))


def ball(shape: tuple[int, int, int], centre: tuple[float, float, float], radius: float) -> np.ndarray:
    z, y, x = np.ogrid[: shape[0], : shape[1], : shape[2]]
    return (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2 <= radius**2


def cross(arm: int, width: int) -> np.ndarray:
    n = 2 * arm + width
    m = np.zeros((n, n, n), bool)
    lo, hi = arm, arm + width
    m[:, lo:hi, lo:hi] = True
    m[lo:hi, :, lo:hi] = True
    m[lo:hi, lo:hi, :] = True
    return m


def two_cells() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two box cells; cell 1 holds a nucleus with a nucleolus and two mitochondria, cell 2 nothing."""
    shape = (12, 40, 60)
    cells = np.zeros(shape, np.uint16)
    cells[1:11, 2:38, 2:30] = 1
    cells[1:11, 2:38, 32:58] = 2
    labels = np.zeros(shape, np.uint8)
    labels[2:9, 5:25, 5:20] = NUCLEUS
    labels[4:7, 10:16, 8:12] = NUCLEOLUS
    labels[2:4, 28:30, 5:25] = MITO
    labels[6:9, 30:34, 22:26] = MITO
    labels[9:10, 30:32, 5:7] = LYSO
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, shape).astype(np.uint8)
    return image, labels, cells


# ---------------------------------------------------------------- volumes and counts


def test_it_measures_box_volumes_exactly_with_anisotropic_voxels() -> None:
    image, labels, cells = two_cells()
    spacing = (8.0, 4.0, 5.0)
    voxel_um3 = 8 * 4 * 5 / 1e9
    table = cell_features(image, labels, cells, voxel_size_nm=spacing).set_index("cell_id")
    assert table.loc[1, "cell_volume_um3"] == pytest.approx(10 * 36 * 28 * voxel_um3, rel=1e-12)
    assert table.loc[2, "cell_volume_um3"] == pytest.approx(10 * 36 * 26 * voxel_um3, rel=1e-12)
    # The nucleus includes its nucleolus: the whole painted nucleus box.
    assert table.loc[1, "nucleus_volume_um3"] == pytest.approx(7 * 20 * 15 * voxel_um3, rel=1e-12)
    assert table.loc[1, "nucleolus_volume_um3"] == pytest.approx(3 * 6 * 4 * voxel_um3, rel=1e-12)
    assert table.loc[1, "mitochondrion_volume_um3"] == pytest.approx((2 * 2 * 20 + 3 * 4 * 4) * voxel_um3, rel=1e-12)
    assert table.loc[1, "mitochondrion_count"] == 2
    assert table.loc[1, "mitochondrion_mean_volume_um3"] == pytest.approx((80 + 48) / 2 * voxel_um3, rel=1e-12)
    assert table.loc[1, "nucleus_pct_of_cell"] == pytest.approx(100 * (7 * 20 * 15) / (10 * 36 * 28), rel=1e-12)
    assert table.loc[1, "lysosome_count"] == 1 and table.loc[1, "endosome_count"] == 0


def test_it_keeps_a_row_for_a_cell_without_a_nucleus() -> None:
    image, labels, cells = two_cells()
    table = cell_features(image, labels, cells, voxel_size_nm=(4, 4, 4)).set_index("cell_id")
    assert sorted(table.index) == [1, 2]
    empty = table.loc[2]
    assert empty["nucleus_volume_um3"] == 0 and empty["nucleus_count"] == 0 and empty["nucleus_pct_of_cell"] == 0
    assert math.isnan(empty["nucleus_solidity"]) and math.isnan(empty["nucleolus_fenestrated_pct"])
    assert empty["nucleolus_fenestration_count"] == 0
    assert math.isnan(empty["texture_nucleus_mean"]) and not math.isnan(empty["texture_cell_mean"])


def test_it_counts_only_the_voxels_inside_each_cell() -> None:
    image, labels, cells = two_cells()
    labels[2:9, 28:34, 30:34] = MITO  # one mitochondrion painted across the gap between the cells
    table = cell_features(image, labels, cells, voxel_size_nm=(1000, 1000, 1000)).set_index("cell_id")
    in_cell_2 = int(np.count_nonzero((labels == MITO) & (cells == 2)))
    assert table.loc[2, "mitochondrion_volume_um3"] == pytest.approx(in_cell_2)
    assert table.loc[2, "mitochondrion_count"] == 1


def test_it_describes_every_column_it_writes_with_a_unit() -> None:
    image, labels, cells = two_cells()
    table = cell_features(image, labels, cells, voxel_size_nm=(4, 4, 4))
    assert list(table.columns) == list(COLUMNS)
    assert all(unit and text for unit, text in COLUMNS.values())
    needed = ["cell_id", "cell_volume_um3", "nucleus_solidity", "nucleus_surface_um2", "nucleus_sphericity",
              "nucleolus_fenestrated_pct", "nucleolus_fenestration_count", "mitochondrion_mean_volume_um3",
              "mitochondrion_elongation", "texture_cell_glcm_contrast", "texture_nucleus_mean"]
    needed += [f"{c}_{m}" for c in DEFAULT_CLASSES for m in ("volume_um3", "count", "pct_of_cell")]
    needed += [f"texture_{r}_glcm_{p}" for r in ("cell", *DEFAULT_CLASSES)
               for p in ("contrast", "dissimilarity", "homogeneity", "energy", "correlation", "ASM")]
    assert not [c for c in needed if c not in table.columns]


def test_it_names_columns_after_custom_classes() -> None:
    image, labels, cells = two_cells()
    classes = {"background": 9, "granule": MITO}
    table = cell_features(image, labels, cells, voxel_size_nm=(4, 4, 4), classes=classes)
    assert list(table.columns) == list(describe_columns(classes))
    assert "granule_volume_um3" in table.columns and "nucleus_solidity" not in table.columns
    assert not any(c.startswith("background") for c in table.columns)


def test_it_computes_only_the_cells_asked_for() -> None:
    image, labels, cells = two_cells()
    table = cell_features(image, labels, cells, voxel_size_nm=(4, 4, 4), cell_ids=[2])
    assert table["cell_id"].tolist() == [2]
    with pytest.raises(ValueError, match="7"):
        cell_features(image, labels, cells, voxel_size_nm=(4, 4, 4), cell_ids=[7])


def test_it_reports_progress_once_per_cell() -> None:
    image, labels, cells = two_cells()
    calls: list[tuple[int, int]] = []
    cell_features(image, labels, cells, voxel_size_nm=(4, 4, 4), on_progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 2), (2, 2)]


def test_it_refuses_bad_inputs_naming_the_bad_value() -> None:
    image, labels, cells = two_cells()
    with pytest.raises(ValueError, match="voxel_size_nm"):
        cell_features(image, labels, cells, voxel_size_nm=(4, 0, 4))
    with pytest.raises(ValueError, match=r"\(12, 40, 59\)"):
        cell_features(image, labels[:, :, :59], cells, voxel_size_nm=(4, 4, 4))
    with pytest.raises(TypeError, match="float"):
        cell_features(image, labels, cells.astype(np.float32), voxel_size_nm=(4, 4, 4))
    with pytest.raises(ValueError, match="share value"):
        cell_features(image, labels, cells, voxel_size_nm=(4, 4, 4), classes={"a": 1, "b": 1})


def test_it_leaves_its_inputs_unchanged() -> None:
    image, labels, cells = two_cells()
    copies = [a.copy() for a in (image, labels, cells)]
    cell_features(image, labels, cells, voxel_size_nm=(4, 4, 4))
    assert all(np.array_equal(a, b) for a, b in zip((image, labels, cells), copies))


# ---------------------------------------------------------------- bounded memory, array-likes


class RecordingArray:
    """Array-like that records the size of every read."""

    def __init__(self, data: np.ndarray) -> None:
        self.data = data
        self.shape, self.dtype, self.ndim = data.shape, data.dtype, data.ndim
        self.reads: list[int] = []

    def __getitem__(self, key: Any) -> np.ndarray:  # any numpy index
        out = np.asarray(self.data[key])
        self.reads.append(out.size)
        return out


def test_it_reads_no_more_than_one_cell_box_or_slab_at_a_time() -> None:
    image, labels, cells = two_cells()
    wrapped = [RecordingArray(a) for a in (image, labels, cells)]
    table = cell_features(*wrapped, voxel_size_nm=(4, 4, 4), intensity_range=(0, 256))
    largest_box = max(int(np.prod([s.stop - s.start for s in b])) for b in cell_bounding_boxes(cells).values())
    assert max(wrapped[0].reads) <= largest_box and max(wrapped[1].reads) <= largest_box
    assert max(wrapped[2].reads) <= max(largest_box, 32 * 40 * 60)
    expected = cell_features(image, labels, cells, voxel_size_nm=(4, 4, 4), intensity_range=(0, 256))
    pd.testing.assert_frame_equal(table, expected)


def test_it_gives_the_same_table_for_zarr_arrays_as_for_numpy(tmp_path) -> None:
    zarr = pytest.importorskip("zarr")
    image, labels, cells = two_cells()
    stored = []
    for name, a in (("image", image), ("labels", labels), ("cells", cells)):
        z = zarr.create_array(str(tmp_path / f"{name}.zarr"), shape=a.shape, dtype=a.dtype, chunks=(4, 16, 16))
        z[:] = a
        stored.append(z)
    pd.testing.assert_frame_equal(
        cell_features(*stored, voxel_size_nm=(4, 4, 4)), cell_features(image, labels, cells, voxel_size_nm=(4, 4, 4))
    )


def test_it_finds_cell_boxes_across_slabs_like_find_objects() -> None:
    rng = np.random.default_rng(3)
    cells = np.zeros((20, 30, 30), np.uint32)
    for cid in (5, 70000, 4_000_000_000):  # huge ids cost nothing
        z, y, x = rng.integers(0, 15, 3)
        cells[z : z + rng.integers(2, 6), y : y + 9, x : x + 7] = cid
    boxes = cell_bounding_boxes(cells, slab_planes=3)
    compact = np.searchsorted([0, 5, 70000, 4_000_000_000], cells)
    expected = ndi.find_objects(compact)
    assert list(boxes) == [5, 70000, 4_000_000_000]
    assert [boxes[c] for c in boxes] == expected


# ---------------------------------------------------------------- shape


def test_it_gives_a_voxelised_ball_solidity_near_one_and_a_cross_clearly_less() -> None:
    sphere = surface_shape(ball((30, 30, 30), (14.5, 14.5, 14.5), 11), voxel_size_nm=(4, 4, 4))
    star = surface_shape(cross(arm=10, width=6), voxel_size_nm=(4, 4, 4))
    assert sphere.solidity > 0.98
    assert star.solidity < 0.6
    assert sphere.sphericity > 0.97 and star.sphericity < 0.8


def test_it_measures_the_surface_of_a_ball_within_three_percent() -> None:
    radius_vox, nm = 16, 5.0
    shape = surface_shape(ball((40, 40, 40), (19.5, 19.5, 19.5), radius_vox), voxel_size_nm=(nm, nm, nm))
    truth_um2 = 4 * math.pi * (radius_vox * nm) ** 2 / 1e6
    assert shape.surface_um2 == pytest.approx(truth_um2, rel=0.03)


def test_it_measures_the_same_ball_alike_with_anisotropic_voxels() -> None:
    # A 3-voxel z-step at 12 nm and a 1-voxel YX-step at 4 nm sample one physical ball.
    z, y, x = np.ogrid[:30, :90, :90]
    physical = ((z - 14.5) * 12) ** 2 + ((y - 44.5) * 4) ** 2 + ((x - 44.5) * 4) ** 2 <= 160**2
    iso = surface_shape(ball((90, 90, 90), (44.5, 44.5, 44.5), 40), voxel_size_nm=(4, 4, 4))
    aniso = surface_shape(physical, voxel_size_nm=(12, 4, 4))
    assert aniso.surface_um2 == pytest.approx(iso.surface_um2, rel=0.03)
    assert aniso.solidity > 0.97


def test_it_measures_nucleus_shape_on_its_largest_piece() -> None:
    image, labels, cells = two_cells()
    labels[9:10, 30:31, 25:26] = NUCLEUS  # a stray one-voxel nucleus fragment
    table = cell_features(image, labels, cells, voxel_size_nm=(4, 4, 4)).set_index("cell_id")
    alone = surface_shape(np.isin(labels[2:9, 5:25, 5:20], (NUCLEUS, NUCLEOLUS)), voxel_size_nm=(4, 4, 4))
    assert table.loc[1, "nucleus_count"] == 2
    assert table.loc[1, "nucleus_surface_um2"] == pytest.approx(alone.surface_um2)
    assert table.loc[1, "nucleus_solidity"] == pytest.approx(alone.solidity)


def test_it_gives_a_box_its_aspect_ratio_as_elongation() -> None:
    m = np.zeros((30, 10, 10), bool)
    m[2:22, 3:7, 3:7] = True  # 20 x 4 x 4 voxels
    m[25:28, 0:3, 0:3] = True  # a cube
    assert elongations(m, voxel_size_nm=(4, 4, 4)) == pytest.approx([5.0, 1.0])
    # The same voxels at 1 nm in z are a 20 x 16 x 16 nm box.
    assert elongations(m[:22], voxel_size_nm=(1, 4, 4)) == pytest.approx([20 / 16])


def test_it_counts_26_connected_objects() -> None:
    m = np.zeros((5, 5, 5), bool)
    m[1, 1, 1] = m[2, 2, 2] = True  # corner-touching: one object
    m[4, 4, 4] = True
    stats = object_stats(m, voxel_volume_nm3=2e9)
    assert stats.count == 2 and sorted(stats.volumes_um3.tolist()) == [2.0, 4.0]


# ---------------------------------------------------------------- fenestration


def nucleolus_with_cavities(radius: float = 14) -> tuple[np.ndarray, np.ndarray]:
    shape = (36, 36, 36)
    body = ball(shape, (17.5, 17.5, 17.5), radius)
    cavities = ball(shape, (12, 17, 17), 2.5) | ball(shape, (23, 17, 17), 3.2) | ball(shape, (17, 24, 12), 1.8)
    return body & ~cavities, cavities & body


def test_it_counts_the_enclosed_cavities_of_a_nucleolus_exactly() -> None:
    nucleolus, cavities = nucleolus_with_cavities()
    _, truth_count = ndi.label(cavities)
    fen = fenestrations(nucleolus, voxel_size_nm=(4, 4, 4))
    assert fen.voxels == np.count_nonzero(cavities)
    assert fen.count == truth_count == 3
    truth_pct = 100 * np.count_nonzero(cavities) / np.count_nonzero(nucleolus | cavities)
    assert fen.fenestrated_pct == pytest.approx(truth_pct, rel=0.02)


def test_it_adds_nothing_to_enclosed_cavities_with_a_closing_radius() -> None:
    nucleolus, cavities = nucleolus_with_cavities()
    fen = fenestrations(nucleolus, voxel_size_nm=(4, 4, 4), closing_radius_nm=16)
    assert abs(fen.voxels - np.count_nonzero(cavities)) <= 0.02 * np.count_nonzero(cavities)
    assert fen.count == 3


def test_it_counts_a_channel_open_to_the_outside_only_with_a_closing() -> None:
    nucleolus, _ = nucleolus_with_cavities()
    channel = np.zeros_like(nucleolus)
    channel[22:25, 16:19, 17:] = True  # a 3-voxel wide channel from the (23, 17, 17) cavity out
    open_nucleolus = nucleolus & ~channel
    assert fenestrations(open_nucleolus, voxel_size_nm=(4, 4, 4)).count == 2  # the channel swallowed a cavity
    closed = fenestrations(open_nucleolus, voxel_size_nm=(4, 4, 4), closing_radius_nm=12)
    assert closed.count == 3
    assert closed.voxels >= np.count_nonzero(channel & nucleolus)


def test_it_does_not_bridge_two_separate_nucleoli() -> None:
    shape = (20, 20, 40)
    pair = ball(shape, (9.5, 9.5, 9.5), 7) | ball(shape, (9.5, 9.5, 26.5), 7)  # 3 voxels apart
    assert fenestrations(pair, voxel_size_nm=(4, 4, 4), closing_radius_nm=40).voxels == 0


def test_it_matches_the_fenestration_truth_in_a_cell_table() -> None:
    shape = (40, 40, 40)
    nucleolus, cavities = nucleolus_with_cavities()
    labels = np.zeros(shape, np.uint8)
    labels[2:38, 2:38, 2:38][ball((36, 36, 36), (17.5, 17.5, 17.5), 17)] = NUCLEUS
    labels[2:38, 2:38, 2:38][nucleolus] = NUCLEOLUS
    cells = np.zeros(shape, np.uint16)
    cells[1:39, 1:39, 1:39] = 4
    table = cell_features(np.zeros(shape, np.uint8), labels, cells, voxel_size_nm=(4, 4, 4))
    assert table.loc[0, "nucleolus_fenestration_count"] == 3
    assert table.loc[0, "nucleolus_fenestration_volume_um3"] == pytest.approx(np.count_nonzero(cavities) * 64e-9)


# ---------------------------------------------------------------- phantom truth


def test_it_matches_the_phantom_truth_for_volumes_and_fenestrations() -> None:
    phantom_module = pytest.importorskip("segmentation.core.phantom")
    ph = phantom_module.make_phantom((24, 96, 96), seed=5, n_cells=4)
    table = cell_features(ph.image, ph.labels, ph.cells, voxel_size_nm=ph.voxel_size_nm).set_index("cell_id")
    voxel_um3 = float(np.prod(ph.voxel_size_nm)) / 1e9
    values = phantom_module.CLASS_VALUES
    assert sorted(table.index) == sorted(int(c) for c in np.unique(ph.cells) if c)
    for cid, row in table.iterrows():
        in_cell = ph.cells == cid
        assert row["cell_volume_um3"] == pytest.approx(np.count_nonzero(in_cell) * voxel_um3, rel=0.02)
        for name, value in values.items():
            truth = np.count_nonzero(in_cell & (ph.labels == value))
            if name == "nucleus":
                truth += np.count_nonzero(in_cell & (ph.labels == values["nucleolus"]))
            assert row[f"{name}_volume_um3"] == pytest.approx(truth * voxel_um3, rel=0.02, abs=1e-12), name
    assert ph.nucleoli, "the phantom should hold nucleoli"
    for cid in {n.cell_id for n in ph.nucleoli}:
        mine = [n for n in ph.nucleoli if n.cell_id == cid]
        fen_voxels = sum(n.fenestration_voxels for n in mine)
        pct = 100 * fen_voxels / (fen_voxels + sum(n.voxels for n in mine))
        assert table.loc[cid, "nucleolus_fenestrated_pct"] == pytest.approx(pct, rel=0.02)
        assert table.loc[cid, "nucleolus_fenestration_volume_um3"] == pytest.approx(fen_voxels * voxel_um3, rel=0.02)
        assert table.loc[cid, "nucleolus_fenestration_count"] == sum(n.fenestration_count for n in mine)


def test_it_documents_every_column_in_features_md() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[3] / "docs" / "FEATURES.md").read_text()
    missing = []
    for column in COLUMNS:
        pattern = column
        if column.startswith("texture_"):
            region = next(r for r in ("cell", *DEFAULT_CLASSES) if column.startswith(f"texture_{r}_"))
            pattern = column.replace(f"texture_{region}_", "texture_<region>_", 1)
        elif column.split("_")[0] in DEFAULT_CLASSES and f"`{column}`" not in doc:
            pattern = "<class>_" + column.split("_", 1)[1]
        if f"`{pattern}`" not in doc:
            missing.append(column)
    assert not missing
