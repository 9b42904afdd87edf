from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from segmentation.core.phantom import CLASS_VALUES, Phantom, key_slices, make_phantom

SHAPE = (16, 96, 96)


@pytest.fixture(scope="module")
def phantom() -> Phantom:
    return make_phantom(SHAPE, seed=3, n_cells=5)


def test_it_gives_the_same_volume_for_the_same_seed(phantom: Phantom) -> None:
    again = make_phantom(SHAPE, seed=3, n_cells=5)
    for name in ("image", "labels", "cells", "interior", "protrusion_ids"):
        np.testing.assert_array_equal(getattr(again, name), getattr(phantom, name), err_msg=name)
    assert again.nucleoli == phantom.nucleoli


def test_it_gives_another_volume_for_another_seed(phantom: Phantom) -> None:
    other = make_phantom(SHAPE, seed=4, n_cells=5)
    assert not np.array_equal(other.cells, phantom.cells)
    assert not np.array_equal(other.image, phantom.image)


def test_it_returns_zyx_arrays_of_the_asked_shape_and_dtypes(phantom: Phantom) -> None:
    assert phantom.image.shape == phantom.labels.shape == phantom.cells.shape == SHAPE
    assert phantom.image.dtype == np.uint8
    assert phantom.labels.dtype == np.uint8
    assert phantom.cells.dtype == np.uint16
    assert phantom.interior.dtype == bool
    np.testing.assert_array_equal(phantom.interior, phantom.cells > 0)
    assert phantom.voxel_size_nm == (4.0, 4.0, 4.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_it_holds_every_class_of_the_paper(seed: int) -> None:
    ph = make_phantom(SHAPE, seed=seed)
    present = set(np.unique(ph.labels).tolist())
    assert set(CLASS_VALUES.values()) <= present
    assert present <= {0, *CLASS_VALUES.values()}


def test_it_puts_every_organelle_inside_a_cell(phantom: Phantom) -> None:
    assert not np.any((phantom.labels > 0) & (phantom.cells == 0))


def test_it_puts_nucleoli_inside_nuclei_of_one_cell_each(phantom: Phantom) -> None:
    nucleolus = phantom.labels == CLASS_VALUES["nucleolus"]
    nucleus_or_inner = np.isin(phantom.labels, (CLASS_VALUES["nucleus"], CLASS_VALUES["nucleolus"]))
    # A nucleolus never touches cytoplasm: dilating it stays within the nucleus.
    assert np.all(nucleus_or_inner[ndi.binary_dilation(nucleolus)])
    for cell in np.unique(phantom.cells[phantom.labels == CLASS_VALUES["nucleus"]]):
        lab, n = ndi.label((phantom.cells == cell) & nucleus_or_inner)
        assert n == 1, f"cell {cell} has {n} nuclei"


def test_it_makes_cells_that_touch_each_other(phantom: Phantom) -> None:
    c = phantom.cells
    touching = (c[:, :, 1:] != c[:, :, :-1]) & (c[:, :, 1:] > 0) & (c[:, :, :-1] > 0)
    assert touching.sum() > 50
    assert len(np.unique(c)) - 1 == 5


def test_it_counts_the_enclosed_fenestrations_it_reports() -> None:
    ph = make_phantom((32, 160, 160), seed=0, n_cells=4)
    assert ph.nucleoli, "no nucleolus was drawn"
    reported = sum(n.fenestration_voxels for n in ph.nucleoli)
    nucleolus = ph.labels == CLASS_VALUES["nucleolus"]
    # Cavities: nucleoplasm that cannot reach the rest of the nucleus without crossing nucleolus.
    filled = ndi.binary_fill_holes(nucleolus)
    cavities = filled & ~nucleolus
    assert reported > 0
    assert int(cavities.sum()) == reported
    assert sum(n.voxels for n in ph.nucleoli) == int(nucleolus.sum())


def test_it_draws_protrusions_that_the_slice_plane_cuts_into_islands(phantom: Phantom) -> None:
    assert phantom.protrusions
    islands = 0
    for z in range(phantom.cells.shape[0]):
        for i, p in enumerate(phantom.protrusions, start=1):
            lab, n = ndi.label(phantom.cells[z] == p.cell_id)
            if n < 2:
                continue
            largest = int(np.argmax(np.bincount(lab.ravel())[1:])) + 1
            tube = phantom.protrusion_ids[z] == i
            islands += len(set(np.unique(lab[tube]).tolist()) - {0, largest})
    assert islands >= len(phantom.protrusions)


def test_it_renders_nuclei_darker_than_cytoplasm_and_lysosomes_darkest(phantom: Phantom) -> None:
    img = phantom.image.astype(float)
    cyto = (phantom.cells > 0) & (phantom.labels == 0)
    nucleus = ndi.binary_erosion(phantom.labels == CLASS_VALUES["nucleus"], iterations=2)
    lyso = phantom.labels == CLASS_VALUES["lysosome"]
    assert img[nucleus].mean() < img[cyto].mean() - 15
    assert img[lyso].mean() < img[nucleus].mean()
    assert 5 < img[cyto].std() < 40  # noisy, not flat, not saturated


def test_it_refuses_a_too_small_shape() -> None:
    with pytest.raises(ValueError, match="shape"):
        make_phantom((4, 32, 32))


def test_it_keeps_instances_only_on_key_slices(phantom: Phantom) -> None:
    keys = key_slices(phantom.cells, every=5)
    assert keys.dtype == np.uint16
    np.testing.assert_array_equal(keys[::5], phantom.cells[::5])
    rest = np.ones(SHAPE[0], bool)
    rest[::5] = False
    assert not keys[rest].any()


def test_it_draws_thin_protrusions_one_voxel_wide_in_one_piece_with_their_cell() -> None:
    ph = make_phantom((24, 96, 96), seed=3, n_cells=4, protrusion_radius=0.5)
    assert ph.protrusions
    for i, p in enumerate(ph.protrusions, start=1):
        tube = ph.protrusion_ids == i
        slices = [z for z in range(tube.shape[0]) if tube[z].any()]
        assert len(slices) >= 3, f"protrusion {i} crosses only slices {slices}"
        for z in slices:  # every tube pixel touches the outside: no pixel lies deeper than one
            assert ndi.distance_transform_edt(tube[z]).max() == 1.0, f"protrusion {i} is wide in slice {z}"
        lab, n = ndi.label(ph.cells == p.cell_id)
        assert n == 1, f"cell {p.cell_id} falls into {n} 6-connected pieces"
