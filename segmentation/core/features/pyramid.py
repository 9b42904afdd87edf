"""Per-cell features read from a multiscale pyramid: each measure at the coarsest level it allows.

A 10 µm cell at 4 nm is ~10¹⁰ voxels: hours per cell at level 0. Most measures do not need
that resolution. :data:`MEASURE_MAX_VOXEL_NM` says, per measure, the largest voxel (nm, in Y
and X) at which it stayed within 1 % of level 0 on the real-size phantom
(``benchmarks/report_levels.py``, table in docs/BENCHMARKS.md). For a volume,
:func:`level_plan` turns that into a pyramid level per measure, and
:func:`cell_features_pyramid` reads each cell's box at each level it needs, one cell at a
time, so memory is bounded by a cell box at the finest level used, never by the volume.

Levels halve Y and X only (``annotations.imaging.omezarr``: Z is kept). Where Z would then be
finer than Y and X (isotropic FIB-SEM), a level is read every ``z_step``-th plane so its voxels
stay near-isotropic: level ``k`` of 4 nm data is read as (4·2ᵏ)³ nm voxels. Plane sampling is
an unbiased estimate of volumes (Cavalieri); its error is part of what the benchmark measures.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from segmentation.core.features.columns import DEFAULT_CLASSES, check_classes, describe_columns
from segmentation.core.features.fenestration import DEFAULT_CLOSING_RADIUS_NM
from segmentation.core.features.table import (
    GROUPS,
    _descendants,
    _one_cell,
    cell_bounding_boxes,
    column_group,
    intensity_range_of,
)

__all__ = [
    "MEASURE_MAX_VOXEL_NM",
    "PyramidTable",
    "ReadLevel",
    "box_at_level",
    "cell_features_pyramid",
    "level_plan",
    "max_voxel_nm",
    "measure_key",
    "pyramid_cell_boxes",
    "read_box",
    "read_level",
]

Box = tuple[slice, slice, slice]

# Largest Y/X voxel (nm) at which a measure stayed within 1 % of level 0 on every real-size
# phantom cell (benchmarks/report_levels.py; docs/BENCHMARKS.md "Reports at scale"), level 0
# being 32 nm there: a 4 nm cell's level 0 (~10^11 voxels in its box) cannot be computed here.
# Keys are column names, or with the class replaced by {class} and the texture region by
# {region}. A measure missing here is read at level 0: volumes of the small organelles
# (mitochondria, endosomes, lysosomes: 6-9 % off at 64 nm), fenestration volume and share
# (7 %), mitochondrial elongation (4.6 %) and every texture column (6-200 %).
MEASURE_MAX_VOXEL_NM: dict[str, float] = {
    "cell_volume_um3": 256,
    "cell_voxels": 256,
    "cell_centroid_z": 256,
    "cell_centroid_y": 256,
    "cell_centroid_x": 256,
    "cell_touches_border": 256,
    "nucleus_volume_um3": 64,
    "nucleus_count": 128,
    "nucleus_pct_of_cell": 64,
    "nucleus_mean_volume_um3": 64,
    "nucleolus_volume_um3": 128,
    "nucleolus_count": 256,
    "nucleolus_pct_of_cell": 64,
    "nucleolus_mean_volume_um3": 128,
    "mitochondrion_count": 64,
    "endosome_count": 64,
    "lysosome_count": 128,
    "nucleus_surface_um2": 64,
    "nucleus_solidity": 128,
    "nucleus_sphericity": 64,
    "nucleolus_fenestration_count": 64,
}


@dataclass(frozen=True)
class PyramidTable:
    """What :func:`cell_features_pyramid` measured.

    table: one row per cell. plan: the level each column is read at. raised: cell id ->
    {planned level: level read} for cells whose box was too large at a planned level.
    """

    table: pd.DataFrame
    plan: dict[str, ReadLevel]
    raised: dict[int, dict[int, int]]


def measure_key(column: str, classes: Iterable[str]) -> str:
    """The measure a column belongs to: ``nucleus_volume_um3`` -> ``{class}_volume_um3``,
    ``texture_cell_glcm_ASM`` -> ``texture_{region}_glcm_ASM``; other columns as they are."""
    names = sorted(classes, key=len, reverse=True)
    alt = "|".join(re.escape(n) for n in names)
    if column.startswith("texture_"):
        m = re.match(rf"texture_(cell|{alt})_(.+)$", column) if alt else re.match(r"texture_(cell)_(.+)$", column)
        if m:
            return f"texture_{{region}}_{m.group(2)}"
        return column
    if alt:
        m = re.match(rf"({alt})_(volume_um3|count|pct_of_cell|mean_volume_um3)$", column)
        if m:
            return f"{{class}}_{m.group(2)}"
    return column


def max_voxel_nm(column: str, classes: Iterable[str], table: Mapping[str, float] | None = None) -> float:
    """Largest voxel (nm) at which ``column`` may be measured; 0 (level 0) when unknown."""
    table = MEASURE_MAX_VOXEL_NM if table is None else table
    if column in table:
        return float(table[column])
    return float(table.get(measure_key(column, classes), 0.0))


@dataclass(frozen=True)
class ReadLevel:
    """How a measure is read: pyramid ``level`` (Y and X halved ``level`` times), every
    ``z_step``-th plane; ``spacing_nm`` is the voxel size (Z, Y, X) read that way."""

    level: int
    z_step: int
    spacing_nm: tuple[float, float, float]

    @property
    def yx_factor(self) -> int:
        return 2**self.level


def read_level(limit_nm: float, voxel_size_nm: Sequence[float], n_levels: int) -> ReadLevel:
    """Coarsest level whose Y/X voxel is at most ``limit_nm`` (level 0 when none is), among
    ``n_levels``; planes are skipped while Z stays no coarser than Y/X and ``limit_nm``."""
    sz, sy, sx = (float(v) for v in voxel_size_nm)
    if n_levels < 1:
        raise ValueError(f"n_levels must be >= 1, got {n_levels}")
    level = 0
    while level + 1 < n_levels and max(sy, sx) * 2 ** (level + 1) <= limit_nm * (1 + 1e-9):
        level += 1
    f = 2**level
    z_step = max(1, int(math.floor(min(sy, sx) * f / sz + 1e-9))) if level else 1
    return ReadLevel(level, z_step, (sz * z_step, sy * f, sx * f))


def level_plan(
    columns: Iterable[str],
    classes: Iterable[str],
    *,
    voxel_size_nm: Sequence[float],
    n_levels: int,
    limits: Mapping[str, float] | None = None,
) -> dict[str, ReadLevel]:
    """The level every column is read at, for a volume of that voxel size and pyramid depth."""
    classes = list(classes)
    return {c: read_level(max_voxel_nm(c, classes, limits), voxel_size_nm, n_levels) for c in columns}


def box_at_level(box0: Box, rl: ReadLevel, shape: Sequence[int]) -> Box:
    """A level-0 box in the coordinates ``rl`` reads: Y/X divided by its factor (rounded out),
    Z as the sampled planes inside the box (``z % z_step == 0``), clipped to ``shape``
    (that level's (Z, Y, X) shape)."""
    f, s = rl.yx_factor, rl.z_step
    z = slice(-(-box0[0].start // s), -(-box0[0].stop // s))
    y = slice(box0[1].start // f, min(int(shape[1]), -(-box0[1].stop // f)))
    x = slice(box0[2].start // f, min(int(shape[2]), -(-box0[2].stop // f)))
    return z, y, x


def read_box(array: Any, box: Box, *, z_step: int = 1) -> np.ndarray:
    """``array[box]`` with Z in sampled-plane coordinates (plane ``i`` is ``array[i * z_step]``),
    read one chunk-deep slab at a time so only the planes kept are ever held whole."""
    z, y, x = box
    if z_step == 1:
        return np.asarray(array[z, y, x])
    planes = list(range(z.start * z_step, z.stop * z_step, z_step))
    out = np.empty((len(planes), y.stop - y.start, x.stop - x.start), np.dtype(array.dtype))
    chunks = getattr(array, "chunks", None)
    depth = int(chunks[0]) if chunks else 16
    i = 0
    while i < len(planes):
        lo = planes[i]
        hi = min(lo + max(depth, z_step), int(array.shape[0]))
        take = [p - lo for p in planes[i:] if p < hi]
        slab = np.asarray(array[lo:hi, y, x])
        out[i : i + len(take)] = slab[take]
        i += len(take)
    return out


def pyramid_cell_boxes(cells: Sequence[Any], level: int) -> dict[int, Box]:
    """Level-0 bounding box of every cell, found by scanning ``cells[level]`` a slab at a time.

    Y and X are the level's box times its factor, so a box read at that level or a coarser one
    holds the whole cell there (a mode-downsampled voxel holds a value of its 2x2 block).
    """
    f = 2 ** int(level)
    shape0 = tuple(int(n) for n in cells[0].shape)
    return {
        cid: (b[0], slice(b[1].start * f, min(shape0[1], b[1].stop * f)),
              slice(b[2].start * f, min(shape0[2], b[2].stop * f)))
        for cid, b in cell_bounding_boxes(cells[level]).items()
    }


def _to_level0(row: dict[str, Any], rl: ReadLevel, box: Box) -> dict[str, Any]:
    """Base columns read at a coarse level, in level-0 voxel units (count, centroid)."""
    f, s = rl.yx_factor, rl.z_step
    row = dict(row)
    row["cell_voxels"] = int(row["cell_voxels"]) * f * f * s
    row["cell_centroid_z"] = float(row["cell_centroid_z"]) * s
    row["cell_centroid_y"] = float(row["cell_centroid_y"]) * f + (f - 1) / 2
    row["cell_centroid_x"] = float(row["cell_centroid_x"]) * f + (f - 1) / 2
    return row


def cell_features_pyramid(
    image: Sequence[Any],
    labels: Sequence[Any],
    cells: Sequence[Any],
    *,
    voxel_size_nm: Sequence[float],
    classes: Mapping[str, int] = DEFAULT_CLASSES,
    hierarchy: Mapping[str, str | None] | None = None,
    cell_ids: Iterable[int] | None = None,
    limits: Mapping[str, float] | None = None,
    fenestration_closing_nm: float = DEFAULT_CLOSING_RADIUS_NM,
    glcm_levels: int = 32,
    intensity_range: tuple[float, float] | None = None,
    boxes: Mapping[int, Box] | None = None,
    max_box_voxels: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> PyramidTable:
    """Per-cell table of :func:`~segmentation.core.features.cell_features`, each column read at
    the coarsest pyramid level :data:`MEASURE_MAX_VOXEL_NM` allows.

    Parameters
    ----------
    image, labels, cells : sequences of array-likes, each (Z, Y/2ᵏ, X/2ᵏ) for level k
        The pyramids (level 0 first) of the EM volume, the class layer and the cell layer,
        as ``annotations.imaging.omezarr`` writes them (Z kept at every level). Only as many
        levels as all three have are used.
    voxel_size_nm : three floats
        Level-0 voxel size (Z, Y, X) in nm.
    limits : mapping of measure key to nm, optional
        Overrides :data:`MEASURE_MAX_VOXEL_NM` (``{}`` reads everything at level 0).
    boxes : mapping of cell id to level-0 box, optional
        :func:`pyramid_cell_boxes` at the finest level the plan uses (scanned when None).
    max_box_voxels : int, optional
        Memory bound: a cell whose box at a planned level holds more voxels is read at the
        first coarser level where it fits (or the coarsest), and :attr:`PyramidTable.raised`
        says so. No bound when None.
    Other parameters are those of :func:`~segmentation.core.features.cell_features`.

    Returns
    -------
    PyramidTable
        The table (voxel counts and centroids in level-0 voxels whatever level they were read
        at), the planned level of each column, and the cells read coarser than planned.
    """
    classes = check_classes(classes)
    n_levels = min(len(image), len(labels), len(cells))
    if n_levels < 1:
        raise ValueError("image, labels and cells need at least level 0 each")
    shape0 = tuple(int(n) for n in image[0].shape)
    for name, levels in (("labels", labels), ("cells", cells)):
        if tuple(int(n) for n in levels[0].shape) != shape0:
            raise ValueError(f"{name} level 0 has shape {tuple(levels[0].shape)}, image has {shape0}")
    spacing = tuple(float(v) for v in voxel_size_nm)
    if len(spacing) != 3 or not all(math.isfinite(v) and v > 0 for v in spacing):
        raise ValueError(f"voxel_size_nm must be three positive numbers (Z, Y, X), got {tuple(voxel_size_nm)!r}")
    columns = list(describe_columns(classes))
    plan = level_plan(columns, classes, voxel_size_nm=spacing, n_levels=n_levels, limits=limits)
    by_level: dict[ReadLevel, set[str]] = {}
    for column, rl in plan.items():
        by_level.setdefault(rl, set()).add(column_group(column))
    finest = min(by_level, key=lambda rl: (rl.level, rl.z_step))
    if intensity_range is None:
        intensity_range = intensity_range_of(image[finest.level])
    members = _descendants(classes, hierarchy)

    boxes = dict(pyramid_cell_boxes(cells, finest.level) if boxes is None else boxes)
    if cell_ids is not None:
        wanted_ids = sorted({int(c) for c in cell_ids})
        unknown = [c for c in wanted_ids if c not in boxes]
        if unknown:
            raise ValueError(f"cell ids {unknown[:10]} do not occur in cells")
        boxes = {c: boxes[c] for c in wanted_ids}

    rows = []
    raised: dict[int, dict[int, int]] = {}
    for done, (cid, box0) in enumerate(boxes.items(), start=1):
        used = {rl: _fit(rl, box0, cells, spacing, max_box_voxels) for rl in by_level}
        wanted: dict[ReadLevel, set[str]] = {}
        for rl, groups in by_level.items():
            wanted.setdefault(used[rl], set()).update(groups)
            if used[rl] != rl:
                raised.setdefault(cid, {})[rl.level] = used[rl].level
        level_rows: dict[ReadLevel, dict[str, Any]] = {}
        for rl in sorted(wanted, key=lambda r: (r.level, r.z_step)):
            level_rows[rl] = _cell_at(rl, cid, box0, image, labels, cells, groups=wanted[rl], classes=classes,
                                      members=members, closing_nm=float(fenestration_closing_nm),
                                      levels=int(glcm_levels), intensity_range=intensity_range)
        fallback = level_rows[used[finest]]
        row = {}
        for column in columns:
            source = level_rows[used[plan[column]]]
            # A cell too thin to show at a coarse level: take the finest level's value instead.
            row[column] = (source if source["cell_voxels"] else fallback).get(column, math.nan)
        rows.append(row)
        if on_progress is not None:
            on_progress(done, len(boxes))
    table = pd.DataFrame(rows, columns=columns)
    table = table.astype({"cell_id": np.int64, "cell_voxels": np.int64, "cell_touches_border": bool})
    return PyramidTable(table, plan, raised)


def _box_voxels(box0: Box, rl: ReadLevel, shape: Sequence[int]) -> int:
    return math.prod(max(0, s.stop - s.start) for s in box_at_level(box0, rl, shape))


def _fit(rl: ReadLevel, box0: Box, cells: Sequence[Any], voxel: tuple[float, ...], cap: int | None) -> ReadLevel:
    """``rl``, or the first coarser level where the cell's box holds at most ``cap`` voxels."""
    while cap is not None and rl.level + 1 < len(cells) and _box_voxels(box0, rl, cells[rl.level].shape) > cap:
        rl = read_level(max(voxel[1], voxel[2]) * 2 ** (rl.level + 1), voxel, len(cells))
    return rl


def _cell_at(rl: ReadLevel, cid: int, box0: Box, image: Sequence[Any], labels: Sequence[Any], cells: Sequence[Any],
             *, groups: set[str], **kwargs: Any) -> dict[str, Any]:
    shape = tuple(int(n) for n in cells[rl.level].shape)
    box = box_at_level(box0, rl, shape)
    sampled_shape = (-(-shape[0] // rl.z_step), shape[1], shape[2])
    spacing = rl.spacing_nm
    if box[0].stop <= box[0].start:  # the cell lies between sampled planes
        return {"cell_voxels": 0}
    img = read_box(image[rl.level], box, z_step=rl.z_step)
    lab = read_box(labels[rl.level], box, z_step=rl.z_step)
    cel = read_box(cells[rl.level], box, z_step=rl.z_step)
    if not np.any(cel == cid):
        return {"cell_voxels": 0}
    row = _one_cell(cid, box, img, lab, cel, shape=sampled_shape, spacing=spacing,
                    groups=frozenset(groups | {GROUPS[0]}), **kwargs)
    return _to_level0(row, rl, box)
