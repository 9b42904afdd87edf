"""Per-cell feature table: one row per cell instance, computed one cell box at a time.

Memory is bounded by the largest cell's bounding box, not by the volume: bounding boxes
are found by reading ``cells`` in slabs of planes, then each cell reads only its box of
``image``, ``labels`` and ``cells``. Any array-like that slices to numpy (numpy, zarr,
h5py, memory-mapped TIFF) works.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from segmentation.core.classes import default_parents
from segmentation.core.features.columns import (
    COLUMNS,
    DEFAULT_CLASSES,
    MITOCHONDRION,
    NUCLEOLUS,
    NUCLEUS,
    check_classes,
    describe_columns,
)
from segmentation.core.features.fenestration import DEFAULT_CLOSING_RADIUS_NM, fenestrations
from segmentation.core.features.morphology import (
    NM3_PER_UM3,
    elongations,
    largest_object,
    object_stats,
    surface_shape,
)
from segmentation.core.features.texture import (
    glcm_matrices,
    glcm_props,
    intensity_stats,
    quantise,
)

__all__ = [
    "DEFAULT_CLASSES",
    "COLUMNS",
    "describe_columns",
    "class_masks",
    "cell_bounding_boxes",
    "intensity_range_of",
    "cell_features",
]

ProgressCallback = Callable[[int, int], None]
_TILE_PX = 1024  # Y and X extent of a block read while looking for cells

# What one cell's row is computed in, cheapest first; a caller may compute only some of them
# (the pyramid reader computes each at its own level). "base" is always computed.
GROUPS = ("base", "objects", "nucleus_shape", "fenestration", "elongation", "texture")


def column_group(column: str) -> str:
    """The computation group (:data:`GROUPS`) a column of the table comes from."""
    if column.startswith("texture_"):
        return "texture"
    if column.startswith("cell_"):
        return "base"
    if column.startswith("nucleus_") and column.endswith(("_surface_um2", "_solidity", "_sphericity")):
        return "nucleus_shape"
    if column.startswith("nucleolus_fenestra"):
        return "fenestration"
    if column == "mitochondrion_elongation":
        return "elongation"
    return "objects"


def _descendants(classes: Mapping[str, int], hierarchy: Mapping[str, str | None] | None) -> dict[str, list[str]]:
    parents = default_parents(list(classes)) if hierarchy is None else dict(hierarchy)
    children: dict[str, list[str]] = {name: [] for name in classes}
    for child, parent in parents.items():
        if parent is not None and parent in children and child in classes:
            children[parent].append(child)

    def walk(name: str, seen: frozenset[str]) -> list[str]:
        out = [name]
        for child in children[name]:
            if child not in seen:
                out.extend(walk(child, seen | {child}))
        return out

    return {name: walk(name, frozenset({name})) for name in classes}


def class_masks(
    labels: np.ndarray,
    classes: Mapping[str, int],
    *,
    hierarchy: Mapping[str, str | None] | None = None,
) -> dict[str, np.ndarray]:
    """Boolean mask per class, each covering its descendants (nucleus includes nucleoli).

    Parameters
    ----------
    labels : ndarray, shape (Z, Y, X), integer
        Innermost class value per voxel.
    classes : mapping of str to int
        Class name -> value; a ``"background"`` entry is ignored.
    hierarchy : mapping child -> parent, optional
        The paper's nesting (nucleolus in nucleus) when None.
    """
    classes = check_classes(classes)
    labels = np.asarray(labels)
    return {
        name: np.isin(labels, [classes[n] for n in members])
        for name, members in _descendants(classes, hierarchy).items()
    }


def cell_bounding_boxes(cells: Any, *, slab_planes: int | None = None) -> dict[int, tuple[slice, slice, slice]]:
    """Bounding box of every cell id, reading ``cells`` a block (slab of planes, ~1024² px) at a time.

    Parameters
    ----------
    cells : array-like, shape (Z, Y, X), integer
        Instance ids, 0 outside cells.
    slab_planes : int, optional
        Planes per read; the array's chunk depth (zarr) or 32 when None.

    Returns
    -------
    dict of int to tuple of three slices
        Sorted by id; slices have explicit start and stop.
    """
    if len(getattr(cells, "shape", ())) != 3:
        raise ValueError(f"cells must be 3D (Z, Y, X), got shape {getattr(cells, 'shape', None)}")
    dtype = np.dtype(cells.dtype)
    if dtype.kind not in "iu":
        raise TypeError(f"cells must hold integer ids, got dtype {dtype}")
    boxes: dict[int, list[int]] = {}
    for origin, block in _blocks(cells, slab_planes):
        _boxes_in(block, origin, boxes)
    return {
        cid: (slice(b[0], b[3]), slice(b[1], b[4]), slice(b[2], b[5]))
        for cid, b in sorted(boxes.items())
    }


def _blocks(array: Any, slab_planes: int | None = None) -> Iterator[tuple[tuple[int, int, int], np.ndarray]]:
    """``(origin, block)`` over the whole array: slabs of ``slab_planes`` planes (the chunk depth
    when None, else 32) cut in Y and X into whole chunks of ~1024 px, so a huge plane is never
    read whole."""
    n_z, n_y, n_x = (int(n) for n in array.shape)
    found = getattr(array, "chunks", None)
    chunks = [int(c) for c in found] if found and all(isinstance(c, (int, np.integer)) for c in found) else None
    if slab_planes is None:
        slab_planes = chunks[0] if chunks else 32
    tiles = [max(chunks[a], (_TILE_PX // chunks[a]) * chunks[a]) if chunks else _TILE_PX for a in (1, 2)]
    for z0 in range(0, n_z, max(1, int(slab_planes))):
        for y0 in range(0, n_y, tiles[0]):
            for x0 in range(0, n_x, tiles[1]):
                yield (z0, y0, x0), np.asarray(array[z0 : z0 + slab_planes, y0 : y0 + tiles[0], x0 : x0 + tiles[1]])


def _boxes_in(slab: np.ndarray, origin: tuple[int, int, int], boxes: dict[int, list[int]]) -> None:
    """Grow ``boxes`` (id -> [z0, y0, x0, z1, y1, x1]) by the cells of one slab read at ``origin``."""
    if slab.size == 0:
        return
    low, high = int(slab.min()), int(slab.max())
    if low < 0:
        raise ValueError(f"cells hold negative id {low} in the block at {origin}")
    if high == 0:
        return
    if high < 2**20:
        ids = np.arange(1, high + 1)
        found = ndi.find_objects(slab.astype(np.int32, copy=False))
    else:
        # Compact huge ids (uint32/uint64) first so find_objects' list stays short.
        ids, compact = np.unique(slab, return_inverse=True)
        found = ndi.find_objects(compact.reshape(slab.shape).astype(np.int32) + 1)
    for cid, box in zip(ids.tolist(), found):
        if cid == 0 or box is None:
            continue
        lo = [b.start + o for b, o in zip(box, origin)]
        hi = [b.stop + o for b, o in zip(box, origin)]
        old = boxes.get(int(cid))
        if old is None:
            boxes[int(cid)] = lo + hi
        else:
            boxes[int(cid)] = [min(a, b) for a, b in zip(old[:3], lo)] + [max(a, b) for a, b in zip(old[3:], hi)]


def intensity_range_of(image: Any, *, slab_planes: int | None = None) -> tuple[float, float]:
    """Fixed intensity range for GLCM quantisation of a whole volume.

    uint8 images use (0, 256) so volumes are comparable with each other; other dtypes use
    (min, max + tiny) of the image, read a block at a time (slabs of ``slab_planes`` planes,
    the chunk depth when None, cut in Y and X).
    """
    dtype = np.dtype(image.dtype)
    if dtype.kind not in "uif":
        raise TypeError(f"image must be numeric, got dtype {dtype}")
    if dtype == np.uint8:
        return 0.0, 256.0
    lo, hi = math.inf, -math.inf
    for _, block in _blocks(image, slab_planes):
        finite = block[np.isfinite(block)] if dtype.kind == "f" else block
        if finite.size:
            lo, hi = min(lo, float(finite.min())), max(hi, float(finite.max()))
    if not math.isfinite(lo):
        raise ValueError("image holds no finite intensity")
    # Half-open range: the brightest voxel lands in the last level, not past it.
    if hi <= lo:
        return lo, lo + 1.0
    return lo, hi + max(1e-6, (hi - lo) * 1e-6)


def _shape3(a: Any, name: str) -> tuple[int, int, int]:
    shape = tuple(int(n) for n in getattr(a, "shape", ()))
    if len(shape) != 3:
        raise ValueError(f"{name} must be 3D (Z, Y, X), got shape {getattr(a, 'shape', None)}")
    return shape


def cell_features(
    image: Any,
    labels: Any,
    cells: Any,
    *,
    voxel_size_nm: Sequence[float],
    classes: Mapping[str, int] = DEFAULT_CLASSES,
    hierarchy: Mapping[str, str | None] | None = None,
    cell_ids: Iterable[int] | None = None,
    fenestration_closing_nm: float = DEFAULT_CLOSING_RADIUS_NM,
    glcm_levels: int = 32,
    intensity_range: tuple[float, float] | None = None,
    on_progress: ProgressCallback | None = None,
) -> pd.DataFrame:
    """Per-cell morphology and texture table.

    Parameters
    ----------
    image : array-like, shape (Z, Y, X), numeric
        The EM volume (numpy, zarr, ...; read one cell box at a time).
    labels : array-like, shape (Z, Y, X), integer
        Innermost class value per voxel (0 = none); a nucleolus voxel counts for the
        nucleus too (``hierarchy``).
    cells : array-like, shape (Z, Y, X), integer
        Cell instance ids, 0 outside cells.
    voxel_size_nm : three floats
        Voxel size (Z, Y, X) in nm.
    classes : mapping of str to int
        Class name -> label value; the paper's five classes by default. Nucleus shape,
        nucleolar fenestration and mitochondrial elongation columns appear when classes
        named ``nucleus``, ``nucleolus``, ``mitochondrion`` are present.
    hierarchy : mapping child -> parent, optional
        Class nesting; the paper's (nucleolus in nucleus) when None.
    cell_ids : iterable of int, optional
        Only these cells (all cells when None). Unknown ids raise ValueError.
    fenestration_closing_nm : float
        Closing radius of the nucleolar envelope, nm (see ``fenestration`` module).
    glcm_levels : int
        Grey levels for the GLCM.
    intensity_range : (lo, hi), optional
        Quantisation range for the GLCM; :func:`intensity_range_of` the image when None.
        Pass one range for all volumes you mean to compare.
    on_progress : callable (done, total) -> None, optional
        Called after each cell.

    Returns
    -------
    pandas.DataFrame
        One row per cell, sorted by ``cell_id``, columns as :func:`describe_columns`
        (NaN where a measure does not apply, e.g. nucleus solidity of a cell without nucleus).

    Examples
    --------
    >>> cells = np.zeros((4, 8, 8), np.uint16); cells[:, :, :4] = 1; cells[:, :, 4:] = 2
    >>> labels = np.zeros_like(cells, dtype=np.uint8); labels[1:3, 2:6, 1:3] = 1
    >>> image = np.full(cells.shape, 100, np.uint8)
    >>> t = cell_features(image, labels, cells, voxel_size_nm=(100, 100, 100))
    >>> t[["cell_id", "nucleus_volume_um3", "nucleus_count"]].to_numpy().tolist()
    [[1.0, 0.016, 1.0], [2.0, 0.0, 0.0]]
    """
    classes = check_classes(classes)
    shape = _shape3(image, "image")
    for name, arr in (("labels", labels), ("cells", cells)):
        if _shape3(arr, name) != shape:
            raise ValueError(f"{name} has shape {tuple(arr.shape)}, image has {shape}")
        if np.dtype(arr.dtype).kind not in "iu":
            raise TypeError(f"{name} must be integers, got dtype {arr.dtype}")
    spacing = tuple(float(s) for s in voxel_size_nm)
    if len(spacing) != 3 or not all(math.isfinite(s) and s > 0 for s in spacing):
        raise ValueError(f"voxel_size_nm must be three positive numbers (Z, Y, X), got {tuple(voxel_size_nm)!r}")
    if fenestration_closing_nm < 0:
        raise ValueError(f"fenestration_closing_nm must be >= 0, got {fenestration_closing_nm}")
    if intensity_range is None:
        intensity_range = intensity_range_of(image)
    members = _descendants(classes, hierarchy)

    boxes = cell_bounding_boxes(cells)
    if cell_ids is not None:
        wanted = [int(c) for c in cell_ids]
        unknown = [c for c in wanted if c not in boxes]
        if unknown:
            raise ValueError(f"cell ids {unknown[:10]} do not occur in cells")
        boxes = {c: boxes[c] for c in sorted(set(wanted))}

    rows = []
    for done, (cid, box) in enumerate(boxes.items(), start=1):
        rows.append(
            _one_cell(
                cid,
                box,
                np.asarray(image[box]),
                np.asarray(labels[box]),
                np.asarray(cells[box]),
                shape=shape,
                spacing=spacing,
                classes=classes,
                members=members,
                closing_nm=float(fenestration_closing_nm),
                levels=int(glcm_levels),
                intensity_range=intensity_range,
            )
        )
        if on_progress is not None:
            on_progress(done, len(boxes))
    columns = list(describe_columns(classes))
    table = pd.DataFrame(rows, columns=columns)
    return table.astype({"cell_id": np.int64, "cell_voxels": np.int64, "cell_touches_border": bool})


def _one_cell(
    cid: int,
    box: tuple[slice, slice, slice],
    image: np.ndarray,
    labels: np.ndarray,
    cells: np.ndarray,
    *,
    shape: tuple[int, int, int],
    spacing: tuple[float, float, float],
    classes: dict[str, int],
    members: dict[str, list[str]],
    closing_nm: float,
    levels: int,
    intensity_range: tuple[float, float],
    groups: frozenset[str] = frozenset(GROUPS),
) -> dict[str, Any]:
    voxel_nm3 = spacing[0] * spacing[1] * spacing[2]
    in_cell = cells == cid
    n_cell = int(np.count_nonzero(in_cell))
    lab = np.where(in_cell, labels, 0)
    wanted = {"objects", "nucleus_shape", "fenestration", "elongation"} & groups
    masks = {name: np.isin(lab, [classes[m] for m in members[name]]) for name in classes} if wanted else {}
    centroid = _centroid(in_cell, n_cell)
    row: dict[str, Any] = {
        "cell_id": int(cid),
        "cell_volume_um3": n_cell * voxel_nm3 / NM3_PER_UM3,
        "cell_voxels": n_cell,
        "cell_centroid_z": centroid[0] + box[0].start,
        "cell_centroid_y": centroid[1] + box[1].start,
        "cell_centroid_x": centroid[2] + box[2].start,
        "cell_touches_border": any(s.start == 0 or s.stop == n for s, n in zip(box, shape)),
    }
    for name, mask in (masks.items() if "objects" in groups else ()):
        stats = object_stats(mask, voxel_volume_nm3=voxel_nm3)
        row[f"{name}_volume_um3"] = stats.total_um3
        row[f"{name}_count"] = stats.count
        row[f"{name}_pct_of_cell"] = 100.0 * stats.total_um3 / row["cell_volume_um3"]
        row[f"{name}_mean_volume_um3"] = stats.mean_um3
    if NUCLEUS in masks and "nucleus_shape" in groups:
        shape_ = surface_shape(largest_object(masks[NUCLEUS]), voxel_size_nm=spacing)
        row["nucleus_surface_um2"] = shape_.surface_um2
        row["nucleus_solidity"] = shape_.solidity
        row["nucleus_sphericity"] = shape_.sphericity
    if NUCLEOLUS in masks and "fenestration" in groups:
        fen = fenestrations(masks[NUCLEOLUS], voxel_size_nm=spacing, closing_radius_nm=closing_nm, within=in_cell)
        row["nucleolus_fenestration_volume_um3"] = fen.voxels * voxel_nm3 / NM3_PER_UM3
        row["nucleolus_fenestrated_pct"] = fen.fenestrated_pct
        row["nucleolus_fenestration_count"] = fen.count
    if MITOCHONDRION in masks and "elongation" in groups:
        el = elongations(masks[MITOCHONDRION], voxel_size_nm=spacing)
        row["mitochondrion_elongation"] = float(el.mean()) if el.size else math.nan
    if "texture" in groups:
        row.update(_texture(image, lab, in_cell, classes, members, levels=levels, intensity_range=intensity_range))
    return row


def _centroid(mask: np.ndarray, n: int) -> tuple[float, float, float]:
    """Centre of mass of a boolean ZYX mask from its three projections (NaN when empty);
    ``ndimage.center_of_mass`` multiplies the whole box by index grids, several times slower."""
    if n == 0:
        return math.nan, math.nan, math.nan
    out = []
    for axis in range(3):
        counts = mask.sum(axis=tuple(a for a in range(3) if a != axis), dtype=np.int64)
        out.append(float(np.dot(counts, np.arange(mask.shape[axis], dtype=np.float64)) / n))
    return out[0], out[1], out[2]


def _texture(
    image: np.ndarray,
    lab: np.ndarray,
    in_cell: np.ndarray,
    classes: dict[str, int],
    members: dict[str, list[str]],
    *,
    levels: int,
    intensity_range: tuple[float, float],
) -> dict[str, float]:
    names = list(classes)
    lab = np.maximum(lab, 0)
    # Region code per voxel: 0 = cell without class, k = k-th class (innermost), -1 = outside.
    lut = np.zeros(int(max(int(lab.max()), max(classes.values()))) + 1, np.int16)
    for k, name in enumerate(names, start=1):
        lut[classes[name]] = k
    code = np.where(in_cell, lut[lab], -1)
    regions = {"cell": list(range(len(names) + 1))}
    regions.update({name: [names.index(m) + 1 for m in members[name]] for name in names})
    grey = quantise(image, levels=levels, intensity_range=intensity_range)
    counts = glcm_matrices(grey, code, regions, levels=levels)
    out: dict[str, float] = {}
    for region, region_codes in regions.items():
        values = image[np.isin(code, region_codes)]
        for stat, value in intensity_stats(values).items():
            out[f"texture_{region}_{stat}"] = value
        for prop, value in glcm_props(counts[region]).items():
            out[f"texture_{region}_glcm_{prop}"] = value
    return out
