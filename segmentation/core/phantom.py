"""Synthetic FIB-SEM-like volumes with known ground truth for every class of the paper.

The phantom stands in for a tumour-biopsy FIB-SEM crop when tests, benchmarks and the
demo need a volume whose every voxel's truth is known:

- several touching cells with irregular borders (a Voronoi tessellation of noisy,
  anisotropic distance fields, so cells are columnar and change slowly along z, as
  in a FIB-SEM stack), with thin extracellular gaps along some borders only;
- thin filopodia-like protrusions: tubes that leave their cell, arc out of the slice
  plane and come back into it further away, so that some slices show a piece of a
  cell as an island cut off from its body;
- one nucleus per cell (some lobed, non-convex), nucleoli inside nuclei with enclosed
  cavities of nucleoplasm (fenestrations), mitochondria (elongated ellipsoids with a
  cristae-like stripe texture), endosomes (small light vesicles with a dark rim) and
  lysosomes (small dark dense bodies), all inside cells;
- TEM-like contrast (dark membranes, light cytoplasm, darker nucleoplasm, dark
  nucleoli and lysosomes), a slight blur and noise.

All arrays are ZYX. Sizes are in voxels and chosen for volumes of roughly
16-64 x 96-256 x 96-256; the ``voxel_size_nm`` is carried as metadata only.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import cv2
import numpy as np
from scipy import ndimage as ndi

__all__ = [
    "CLASS_VALUES",
    "NucleolusTruth",
    "Phantom",
    "Protrusion",
    "key_slices",
    "make_phantom",
]

CLASS_VALUES: dict[str, int] = {
    "nucleus": 1,
    "nucleolus": 2,
    "mitochondrion": 3,
    "endosome": 4,
    "lysosome": 5,
}
"""Semantic label values of :attr:`Phantom.labels` (0 = extracellular space or cytoplasm)."""

# Grey values of the noiseless image (TEM-like contrast: membranes dark, resin light).
_GREY = {
    "extracellular": 205.0,
    "cytoplasm": 165.0,
    "membrane": 70.0,
    "nucleoplasm": 128.0,
    "envelope": 75.0,
    "nucleolus": 72.0,
    "mito_matrix": 92.0,
    "mito_crista": 145.0,
    "mito_membrane": 55.0,
    "endosome_lumen": 200.0,
    "endosome_rim": 85.0,
    "lysosome": 38.0,
}


@dataclass(frozen=True)
class NucleolusTruth:
    """Known numbers of one nucleolus.

    cell_id: the cell holding it. voxels: voxels labelled nucleolus (holes excluded).
    fenestration_voxels: voxels of its enclosed nucleoplasm cavities.
    fenestration_count: number of cavities.
    """

    cell_id: int
    voxels: int
    fenestration_voxels: int
    fenestration_count: int


@dataclass(frozen=True)
class Protrusion:
    """A filopodium-like tube of cell ``cell_id``.

    base_z: the slice where the tube leaves the cell body and where its tip comes back.
    centreline: float array (N, 3) of ZYX points along the tube. radius: in voxels.
    """

    cell_id: int
    base_z: int
    centreline: np.ndarray
    radius: float


@dataclass(frozen=True)
class Phantom:
    """A synthetic volume and its ground truth.

    Attributes
    ----------
    image : ndarray, shape (Z, Y, X), uint8
        FIB-SEM-like grey values.
    labels : ndarray, shape (Z, Y, X), uint8
        Semantic truth, one value per voxel (the innermost class), see
        :data:`CLASS_VALUES`; 0 = extracellular space or cytoplasm.
    cells : ndarray, shape (Z, Y, X), uint16
        Cell instance ids 1..n, 0 outside cells.
    interior : ndarray, shape (Z, Y, X), bool
        ``cells > 0``.
    protrusion_ids : ndarray, shape (Z, Y, X), uint16
        Voxels of protrusion tubes outside their cell's body: index into
        :attr:`protrusions` plus one, 0 elsewhere.
    voxel_size_nm : tuple of float
        Z, Y, X voxel size in nanometres.
    nucleoli : tuple of NucleolusTruth
        Per-nucleolus truth numbers (fenestrations).
    protrusions : tuple of Protrusion
        The tubes drawn.
    seed : int
        The seed that made it.
    """

    image: np.ndarray
    labels: np.ndarray
    cells: np.ndarray
    interior: np.ndarray
    protrusion_ids: np.ndarray
    voxel_size_nm: tuple[float, float, float]
    nucleoli: tuple[NucleolusTruth, ...] = field(default_factory=tuple)
    protrusions: tuple[Protrusion, ...] = field(default_factory=tuple)
    seed: int = 0


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int, int], cell: tuple[float, float, float]) -> np.ndarray:
    """Smooth random field of unit std, varying over about ``cell`` voxels per axis."""
    coarse = tuple(max(2, int(np.ceil(s / c)) + 1) for s, c in zip(shape, cell))
    small = rng.standard_normal(coarse).astype(np.float32)
    small = ndi.gaussian_filter(small, 0.7, mode="wrap")
    # Bilinear in YX per coarse plane (OpenCV), then linear in Z: far faster than ndi.zoom.
    planes = np.stack([cv2.resize(p, (shape[2], shape[1]), interpolation=cv2.INTER_LINEAR) for p in small])
    pos = np.clip((np.arange(shape[0]) + 0.5) * coarse[0] / shape[0] - 0.5, 0, coarse[0] - 1)
    i0 = np.minimum(pos.astype(int), coarse[0] - 2)
    w = (pos - i0).astype(np.float32)[:, None, None]
    big = planes[i0] * (1 - w) + planes[i0 + 1] * w
    big -= big.mean()
    sd = big.std()
    return big / sd if sd > 0 else big


def _boundary(ids: np.ndarray) -> np.ndarray:
    """True where a voxel with id > 0 has a 6-neighbour with a different id."""
    out = np.zeros(ids.shape, bool)
    for axis in range(3):
        a = np.swapaxes(ids, 0, axis)
        o = np.swapaxes(out, 0, axis)
        diff = a[1:] != a[:-1]
        o[1:] |= diff
        o[:-1] |= diff
    return out & (ids > 0)


def _box(center: np.ndarray, half: np.ndarray, shape: tuple[int, ...]) -> tuple[slice, ...] | None:
    lo = np.maximum(np.floor(center - half).astype(int), 0)
    hi = np.minimum(np.ceil(center + half).astype(int) + 1, shape)
    if np.any(hi <= lo):
        return None
    return tuple(slice(a, b) for a, b in zip(lo, hi))


def _grid(box: tuple[slice, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    zz, yy, xx = np.ogrid[box[0], box[1], box[2]]
    return zz, yy, xx


def _ellipsoid(
    center: np.ndarray, axes: np.ndarray, rot: np.ndarray, shape: tuple[int, ...]
) -> tuple[tuple[slice, ...], np.ndarray, np.ndarray] | None:
    """Voxels of an ellipsoid: (box, mask in box, coordinates along its axes in box).

    ``rot`` rows are the ellipsoid's unit axes in ZYX; ``axes`` its semi-axes.
    """
    half = np.abs(rot.T) @ axes + 1.0
    box = _box(center, half, shape)
    if box is None:
        return None
    z, y, x = _grid(box)
    d = [z - center[0], y - center[1], x - center[2]]
    u = [rot[i, 0] * d[0] + rot[i, 1] * d[1] + rot[i, 2] * d[2] for i in range(3)]
    rho = (u[0] / axes[0]) ** 2 + (u[1] / axes[1]) ** 2 + (u[2] / axes[2]) ** 2
    return box, rho <= 1.0, np.stack(np.broadcast_arrays(*u))


def _full(axes: np.ndarray) -> float:
    """Most of an ellipsoid's voxel count: fewer means it was cut by an array edge."""
    return 0.8 * 4.0 / 3.0 * np.pi * float(np.prod(axes))


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    return q * np.sign(np.diag(r))


def _tessellate(
    rng: np.random.Generator, shape: tuple[int, int, int], n_cells: int
) -> tuple[np.ndarray, np.ndarray]:
    """Irregular touching cells: returns (cell ids uint16, seeds (n, 3))."""
    Z, Y, X = shape
    # Seeds on a jittered grid in YX so every cell gets room; z near the middle.
    cols = int(np.ceil(np.sqrt(n_cells * X / Y)))
    rows = int(np.ceil(n_cells / cols))
    slots = rng.permutation(rows * cols)[:n_cells]
    seeds = np.empty((n_cells, 3), float)
    for i, s in enumerate(slots):
        r, c = divmod(int(s), cols)
        seeds[i] = (
            rng.uniform(0.3, 0.7) * Z,
            (r + rng.uniform(0.3, 0.7)) * Y / rows,
            (c + rng.uniform(0.3, 0.7)) * X / cols,
        )
    spacing = np.sqrt(Y * X / n_cells)
    zz, yy, xx = np.ogrid[:Z, :Y, :X]
    first = np.full(shape, np.inf, np.float32)
    second = np.full(shape, np.inf, np.float32)
    ids = np.zeros(shape, np.uint16)
    # Cells lie oblique to the slice plane: their cross-sections slide across the
    # field of view from slice to slice (a shared drift plus each cell's own).
    drift = rng.normal(0.0, 0.3, 2) + rng.normal(0.0, 0.25, (n_cells, 2))
    for i, (sz, sy, sx) in enumerate(seeds):
        # z weighs less than y, x: columnar cells whose outline changes slowly with z.
        dz = zz - sz
        d = np.sqrt(
            (dz * 0.35) ** 2 + (yy - sy - drift[i, 0] * dz) ** 2 + (xx - sx - drift[i, 1] * dz) ** 2,
            dtype=np.float32,
        )
        d += 0.16 * spacing * _smooth_noise(rng, shape, (Z / 3.0, spacing / 2.5, spacing / 2.5))
        closer = d < first
        second = np.where(closer, first, np.minimum(second, d))
        first = np.where(closer, d, first)
        ids[closer] = i + 1
    # Extracellular space: far from every seed, and thin gaps along some borders only.
    far = first > 0.68 * spacing + 0.12 * spacing * _smooth_noise(rng, shape, (Z, spacing / 2, spacing / 2))
    gap_noise = _smooth_noise(rng, shape, (Z, spacing / 2, spacing / 2))
    gap = (second - first < 2.5) & (gap_noise > 0.2)
    ids[far | gap] = 0
    # Keep each cell's largest 3D piece (noise can cut off small fragments).
    _keep_largest_pieces(ids)
    return ids, seeds


def _keep_largest_pieces(ids: np.ndarray) -> None:
    """In place: every id keeps only its largest 6-connected piece; the rest becomes 0."""
    for c, crop in enumerate(ndi.find_objects(ids), start=1):
        if crop is None:
            continue
        sub = ids[crop]
        lab, n = ndi.label(sub == c)
        if n > 1:
            sizes = np.bincount(lab.ravel())[1:]
            sub[(lab > 0) & (lab != int(np.argmax(sizes)) + 1)] = 0


def _voxel_path(pts: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Voxels of a 6-connected path through the rounded points ``pts`` (N, 3), one coordinate per step."""
    ip = np.round(pts).astype(int)
    path = [ip[0]]
    for q in ip[1:]:
        cur = path[-1].copy()
        while np.any(cur != q):
            axis = int(np.argmax(np.abs(q - cur)))  # step along the axis with most left to go
            cur[axis] += int(np.sign(q[axis] - cur[axis]))
            path.append(cur.copy())
    out = np.array(path)
    return out[np.all((out >= 0) & (out < np.array(shape)), axis=1)]


def _draw_tube(cells: np.ndarray, pts: np.ndarray, radius: float, value: int) -> np.ndarray:
    """Paint a tube of ``radius`` along ``pts`` (N, 3) into ``cells``; returns the tube mask.

    Below radius 1 the tube is a 6-connected wire one voxel wide, so it stays one
    piece with its cell (a ball of radius < 1 per point would leave it in crumbs).
    """
    shape = cells.shape
    mask = np.zeros(shape, bool)
    if radius < 1:
        v = _voxel_path(pts, shape)
        mask[v[:, 0], v[:, 1], v[:, 2]] = True
        cells[mask] = value
        return mask
    for p in pts:
        box = _box(p, np.full(3, radius + 1.0), shape)
        if box is None:
            continue
        z, y, x = _grid(box)
        mask[box] |= (z - p[0]) ** 2 + (y - p[1]) ** 2 + (x - p[2]) ** 2 <= radius**2
    cells[mask] = value
    return mask


def _protrusions(
    rng: np.random.Generator, cells: np.ndarray, seeds: np.ndarray, count: int, radius: float
) -> tuple[list[Protrusion], list[np.ndarray]]:
    """Add arcing tubes into the extracellular space.

    Each tube leaves its cell body in slice z0, runs outwards through extracellular
    space while rising out of the plane, and comes back down to z0 at its tip, so the
    plane z0 (and its neighbours) shows the tip as an island cut off from the cell.
    """
    Z, Y, X = cells.shape
    out: list[Protrusion] = []
    masks: list[np.ndarray] = []
    n = seeds.shape[0]
    # Room in the extracellular space: distance to the nearest cell voxel.
    room = ndi.distance_transform_edt(cells == 0).astype(np.float32)
    disk6 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (13, 13))
    for attempt in range(count * 60):
        if len(out) >= count:
            break
        # Small volumes have little extracellular room: ask for less after many misses.
        slack = 0.0 if attempt < count * 30 else 0.5
        c = int(rng.integers(1, n + 1))
        height = float(min(rng.uniform(4, 8), (Z - 4) / 2))
        if height < 3:
            break
        up = bool(rng.integers(0, 2))
        lo, hi = (2, Z - 3 - int(height)) if up else (2 + int(height), Z - 3)
        if hi <= lo:
            continue
        z0 = int(rng.integers(lo, hi + 1))
        own = cells[z0] == c
        if not own.any():
            continue
        # A roomy extracellular pixel near the cell, then the straight way to it from the cell.
        near = (cv2.dilate(own.astype(np.uint8), disk6) > 0) & (room[z0] >= radius + 1.5 - slack)
        cand = np.argwhere(near)
        if len(cand) == 0:
            continue
        ty, tx = cand[rng.integers(len(cand))].astype(float)
        cy, cx = np.argwhere(own).mean(axis=0)
        d = np.array([ty - cy, tx - cx])
        if np.linalg.norm(d) < 1:
            continue
        dy, dx = d / np.linalg.norm(d) + rng.normal(0, 0.15, 2)
        norm = np.hypot(dy, dx)
        dy, dx = dy / norm, dx / norm
        t = 0.0
        while True:  # march from the target back into the cell body
            yy, xx = int(round(ty - t * dy)), int(round(tx - t * dx))
            if not (0 <= yy < Y and 0 <= xx < X):
                break
            if own[yy, xx]:
                break
            t += 1.0
            if t > 12:
                break
        if t > 12:
            continue
        by, bx = ty - (t + 3.0) * dy, tx - (t + 3.0) * dx
        length = rng.uniform(16, 28)
        ts = np.linspace(0.0, 1.0, int(length * 1.5) + 2)
        zs = z0 + (1 if up else -1) * height * np.sin(np.pi * np.clip(ts * 1.12, 0, 1))
        pts = np.stack([zs, by + ts * (length + 3.0) * dy, bx + ts * (length + 3.0) * dx], 1)
        ip = np.round(pts).astype(int)
        if np.any(ip < 0) or np.any(ip >= np.array(cells.shape)):
            continue
        ids = cells[ip[:, 0], ip[:, 1], ip[:, 2]]
        outside = np.flatnonzero(ids != c)
        if len(outside) < len(pts) // 2:
            continue
        # Outside its body the tube runs through extracellular space, clear of other cells.
        # Past its first few steps out, it keeps at least a voxel of space from every cell
        # (otherwise an interior mask could not tell it from the cell it touches).
        r_out = room[ip[outside[4:], 0], ip[outside[4:], 1], ip[outside[4:], 2]]
        if r_out.size == 0 or r_out.min() < radius + 1.8 - slack:
            continue
        body = cells == c
        tube = _draw_tube(cells, pts, radius, c)
        masks.append(tube & ~body)
        # Keep later tubes clear of this one (only around it, not over the whole volume).
        near_tube = _box(pts.mean(axis=0), np.ptp(pts, axis=0) / 2 + radius + 6, cells.shape)
        if near_tube is not None:
            room[near_tube][ndi.binary_dilation(tube[near_tube], iterations=4)] = 0
        out.append(Protrusion(cell_id=c, base_z=z0, centreline=pts, radius=radius))
    return out, masks


def _inner_distance(cells: np.ndarray) -> np.ndarray:
    """Distance (voxels, z counted 1) from each voxel to the nearest other-cell voxel."""
    return ndi.distance_transform_edt(~_boundary(cells) & (cells > 0)).astype(np.float32)


def _place(
    rng: np.random.Generator,
    allowed: np.ndarray,
    candidates: np.ndarray,
    make: Callable[[np.ndarray], tuple[tuple[slice, ...], np.ndarray, np.ndarray] | None],
    tries: int,
    min_voxels: float = 4,
) -> tuple[np.ndarray, tuple[slice, ...], np.ndarray, np.ndarray] | None:
    """Try random centres from ``candidates`` (M, 3) until ``make`` gives a shape fully in ``allowed``.

    ``min_voxels`` rejects shapes cut short by the edge of the array they are drawn in.
    """
    if len(candidates) == 0:
        return None
    for _ in range(tries):
        centre = candidates[rng.integers(len(candidates))].astype(float) + rng.uniform(-0.5, 0.5, 3)
        got = make(centre)
        if got is None:
            continue
        box, mask, coords = got
        if mask.sum() >= max(4.0, min_voxels) and np.all(allowed[box][mask]):
            return centre, box, mask, coords
    return None


def make_phantom(
    shape: tuple[int, int, int] = (48, 192, 192),
    *,
    seed: int = 0,
    n_cells: int = 8,
    n_protrusions: int | None = None,
    protrusion_radius: float = 1.6,
    noise: float = 11.0,
    voxel_size_nm: tuple[float, float, float] = (4.0, 4.0, 4.0),
) -> Phantom:
    """Make a deterministic FIB-SEM-like volume with ground truth for every class.

    Parameters
    ----------
    shape : tuple of int
        (Z, Y, X) in voxels; at least (12, 64, 64).
    seed : int
        Random seed: the same seed and arguments give the same phantom, bit for bit.
    n_cells : int
        Number of cells (2..64).
    n_protrusions : int, optional
        Number of filopodia-like tubes; ``max(2, n_cells // 2)`` by default.
    protrusion_radius : float
        Tube radius in voxels: 1.6 draws tubes about three voxels wide; below 1 a
        tube is a 6-connected wire one voxel wide in every slice it crosses.
    noise : float
        Standard deviation of the additive Gaussian noise, in grey levels.
    voxel_size_nm : tuple of float
        (Z, Y, X) voxel size in nm, stored as metadata.

    Returns
    -------
    Phantom
        image uint8, labels uint8, cells uint16, interior bool, all of ``shape``, and
        the truth numbers (nucleoli fenestrations, protrusions).

    Examples
    --------
    >>> ph = make_phantom((16, 96, 96), seed=1, n_cells=4)
    >>> ph.image.dtype, bool(ph.labels.max() <= 5), int(ph.cells.max())
    (dtype('uint8'), True, 4)
    """
    shape = tuple(int(s) for s in shape)  # type: ignore[assignment]
    if len(shape) != 3 or shape[0] < 12 or shape[1] < 64 or shape[2] < 64:
        raise ValueError(f"shape {shape} must be (Z, Y, X) with Z >= 12 and Y, X >= 64")
    if not 2 <= n_cells <= 64:
        raise ValueError(f"n_cells {n_cells} must be in 2..64")
    if not 0.5 <= protrusion_radius <= 4:
        raise ValueError(f"protrusion_radius {protrusion_radius} must be in 0.5..4 voxels")
    if len(voxel_size_nm) != 3 or min(voxel_size_nm) <= 0:
        raise ValueError(f"voxel_size_nm {voxel_size_nm} must be three positive numbers")
    rng = np.random.default_rng(seed)
    Z, Y, X = shape

    cells, seeds = _tessellate(rng, shape, n_cells)
    n_tubes = max(2, n_cells // 2) if n_protrusions is None else int(n_protrusions)
    protrusions, tube_masks = _protrusions(rng, cells, seeds, n_tubes, protrusion_radius)
    # A tube may have cut a cell in two: keep each cell's largest piece.
    _keep_largest_pieces(cells)
    protrusion_ids = np.zeros(shape, np.uint16)
    for i, (p, m) in enumerate(zip(protrusions, tube_masks)):
        protrusion_ids[m & (cells == p.cell_id)] = i + 1

    labels = np.zeros(shape, np.uint8)
    inner = _inner_distance(cells)
    # Nuclei keep away from the volume's Y and X faces so none is cut open by the crop.
    zz, yy, xx = np.ogrid[:Z, :Y, :X]
    to_yx_face = np.minimum(np.minimum(yy, Y - 1 - yy), np.minimum(xx, X - 1 - xx)).astype(np.float32)
    to_face = np.minimum(to_yx_face, np.minimum(zz, Z - 1 - zz)).astype(np.float32)
    membrane = _boundary(cells)
    # Texture layers for the image: crista stripes, rims.
    crista = np.zeros(shape, bool)
    mito_rim = np.zeros(shape, bool)
    endo_rim = np.zeros(shape, bool)
    nucleoli: list[NucleolusTruth] = []

    objects = ndi.find_objects(cells)
    for c in range(1, n_cells + 1):
        if c > len(objects) or objects[c - 1] is None:
            continue
        # Work inside the cell's bounding box: views, so writes land in the full arrays.
        crop = objects[c - 1]
        cells_c, labels_c, inner_c = cells[crop], labels[crop], inner[crop]
        crista_c, mito_rim_c, endo_rim_c = crista[crop], mito_rim[crop], endo_rim[crop]
        face_c = to_face[crop]
        shape_c = cells_c.shape
        own = cells_c == c
        body = own & (protrusion_ids[crop] == 0)
        # Nucleus: lobed ellipsoid around the deepest point of the cell body.
        deep = np.where(body, np.minimum(inner_c, face_c + 2.0), 0)
        centre = np.array(np.unravel_index(int(np.argmax(deep)), shape_c), float)
        # Size from the room in the plane; the z faces only chose a central slice.
        yx_face = to_yx_face[0][crop[1], crop[2]]
        cz, cy, cx = centre.astype(int)
        room = float(min(inner_c[cz, cy, cx], yx_face[cy, cx] + 2.0))
        if room < 5:
            continue
        ry = max(3.0, 0.72 * room)
        axes = np.array([min(ry * rng.uniform(0.8, 1.1), Z / 2 - 2), ry * rng.uniform(0.9, 1.15), ry * rng.uniform(0.9, 1.15)])
        lobes = int(rng.integers(2, 4))
        lobe_amp = rng.uniform(0.1, 0.28) if c % 2 else rng.uniform(0.0, 0.06)
        phase = rng.uniform(0, 2 * np.pi)
        box = _box(centre, axes * 1.35 + 1, shape_c)
        if box is None:
            continue
        z, y, x = _grid(box)
        u = [(z - centre[0]) / axes[0], (y - centre[1]) / axes[1], (x - centre[2]) / axes[2]]
        rho = np.sqrt(u[0] ** 2 + u[1] ** 2 + u[2] ** 2)
        phi = np.arctan2(u[1], u[2])
        radius = 1.0 + lobe_amp * np.cos(lobes * phi + phase) - 0.1 * u[0] ** 2
        nucleus = (rho <= radius) & body[box] & (inner_c[box] >= 4)
        lab, n = ndi.label(nucleus)
        if n > 1:
            nucleus = lab == int(np.argmax(np.bincount(lab.ravel())[1:])) + 1
        labels_c[box][nucleus] = CLASS_VALUES["nucleus"]
        nuc_full = labels_c == CLASS_VALUES["nucleus"]
        nuc_inner = ndi.distance_transform_edt(np.pad(nucleus, 1))[1:-1, 1:-1, 1:-1]

        # Nucleoli with enclosed nucleoplasm cavities.
        n_nucleoli = 1 if room < 14 else int(rng.integers(1, 3))
        for _ in range(n_nucleoli):
            depth = float(nuc_inner.max())
            r = min(depth - 1.2, max(3.5, 0.5 * depth * rng.uniform(0.8, 1.1)), 9.0)
            if r < 2.5:
                break
            cand = np.argwhere(nuc_inner >= r + 1.2) + np.array([s.start for s in box])
            rot = _random_rotation(rng)
            ax = np.array([r * 0.85, r, r * 1.15])
            ax[0] = min(ax[0], r)
            allowed = ndi.binary_erosion(labels_c == CLASS_VALUES["nucleus"], border_value=1)
            got = _place(rng, allowed, cand, partial(_ellipsoid, axes=ax, rot=rot, shape=shape_c), tries=20, min_voxels=_full(ax))
            if got is None:
                continue
            ncentre, nbox, nmask, _ncoords = got
            holes = np.zeros(nmask.shape, bool)
            n_holes = int(rng.integers(2, 6))
            zc, yc, xc = _grid(nbox)
            ring = np.ones((3, 3, 3), bool)
            made = 0
            for _h in range(n_holes * 12):
                if made >= n_holes:
                    break
                hr = rng.uniform(1.0, max(1.1, min(1.7, 0.25 * r)))
                reach = max(0.0, ax.min() - hr - 1.2)
                off = rng.standard_normal(3)
                off = off / (np.linalg.norm(off) + 1e-9) * reach * rng.uniform(0.15, 1.0) ** (1 / 3)
                hc = ncentre + off @ rot  # along the nucleolus axes, back to ZYX
                h = (zc - hc[0]) ** 2 + (yc - hc[1]) ** 2 + (xc - hc[2]) ** 2 <= hr**2
                if not h.any():
                    continue
                # Enclosed: its 26-neighbour shell is solid nucleolus, apart from other holes.
                shell = ndi.binary_dilation(h, ring) & ~h
                if not np.all(nmask[shell]) or (shell & holes).any() or (h & holes).any():
                    continue
                holes |= h
                made += 1
            region = labels_c[nbox]
            region[nmask & ~holes] = CLASS_VALUES["nucleolus"]
            _lab, nh = ndi.label(holes)
            nucleoli.append(
                NucleolusTruth(
                    cell_id=c,
                    voxels=int(np.count_nonzero(nmask & ~holes)),
                    fenestration_voxels=int(np.count_nonzero(holes)),
                    fenestration_count=int(nh),
                )
            )
            nuc_inner = nuc_inner * (labels_c[box] == CLASS_VALUES["nucleus"])
            nuc_inner = np.where(ndi.binary_dilation(labels_c[box] == CLASS_VALUES["nucleolus"], iterations=2), 0, nuc_inner)

        # Cytoplasmic organelles: mitochondria, endosomes, lysosomes.
        cyto = body & (labels_c == 0) & ~ndi.binary_dilation(nuc_full, iterations=2) & (inner_c >= 3)
        vol = float(np.count_nonzero(own))
        n_mito = max(1, int(round(vol / 9000)))
        n_endo = max(1, int(round(vol / 25000)))
        n_lyso = max(1, int(round(vol / 25000)))
        cand = np.argwhere(cyto)
        for _ in range(n_mito):
            rot = _random_rotation(rng)
            ax = np.array([rng.uniform(8, 13), rng.uniform(2.6, 3.6), rng.uniform(2.4, 3.2)])
            allowed = cyto & (labels_c == 0)
            got = _place(rng, allowed, cand, partial(_ellipsoid, axes=ax, rot=rot, shape=shape_c), tries=30, min_voxels=_full(ax))
            if got is None:
                ax = ax * 0.6
                got = _place(rng, allowed, cand, partial(_ellipsoid, axes=ax, rot=rot, shape=shape_c), tries=30, min_voxels=_full(ax))
            if got is None:
                continue
            _c, mbox, mmask, mcoords = got
            labels_c[mbox][mmask] = CLASS_VALUES["mitochondrion"]
            period = rng.uniform(3.2, 4.2)
            stripes = np.cos(2 * np.pi * mcoords[0] / period + rng.uniform(0, 6.3)) > 0.35
            crista_c[mbox] |= mmask & stripes
            mito_rim_c[mbox] |= mmask & ~ndi.binary_erosion(mmask)
        for kind, n_obj, rr in (("endosome", n_endo, (2.0, 3.4)), ("lysosome", n_lyso, (1.6, 2.8))):
            for _ in range(n_obj):
                r = rng.uniform(*rr)
                ax = np.array([r, r, r]) * rng.uniform(0.85, 1.15, 3)
                rot = _random_rotation(rng)
                allowed = cyto & (labels_c == 0)
                got = _place(rng, allowed, cand, partial(_ellipsoid, axes=ax, rot=rot, shape=shape_c), tries=40, min_voxels=_full(ax))
                if got is None:
                    got = _place(rng, allowed, cand, partial(_ellipsoid, axes=ax * 0.7, rot=rot, shape=shape_c), tries=40, min_voxels=_full(ax * 0.7))
                if got is None:
                    continue
                _c, obox, omask, _ = got
                labels_c[obox][omask] = CLASS_VALUES[kind]
                if kind == "endosome":
                    endo_rim_c[obox] |= omask & ~ndi.binary_erosion(omask)

    labels[cells == 0] = 0
    image = _render(rng, cells, labels, membrane, crista, mito_rim, endo_rim, noise)
    return Phantom(
        image=image,
        labels=labels,
        cells=cells,
        interior=cells > 0,
        protrusion_ids=protrusion_ids,
        voxel_size_nm=tuple(float(v) for v in voxel_size_nm),  # type: ignore[arg-type]
        nucleoli=tuple(nucleoli),
        protrusions=tuple(protrusions),
        seed=seed,
    )


def _render(
    rng: np.random.Generator,
    cells: np.ndarray,
    labels: np.ndarray,
    membrane: np.ndarray,
    crista: np.ndarray,
    mito_rim: np.ndarray,
    endo_rim: np.ndarray,
    noise: float,
) -> np.ndarray:
    """Grey values from the truth: class intensities, membranes, texture, blur, noise."""
    shape = cells.shape
    g = np.full(shape, _GREY["extracellular"], np.float32)
    g[cells > 0] = _GREY["cytoplasm"]
    # Cytoplasm is not flat: faint granular texture.
    g += 6.0 * _smooth_noise(rng, shape, (3.0, 3.0, 3.0)) * (cells > 0)
    nuc = labels == CLASS_VALUES["nucleus"]
    g[nuc] = _GREY["nucleoplasm"] + 5.0 * _smooth_noise(rng, shape, (2.0, 2.0, 2.0))[nuc]
    envelope = nuc & ~ndi.binary_erosion(labels > 0, iterations=1) | (nuc & ~ndi.binary_erosion(np.isin(labels, (1, 2)), iterations=1))
    g[envelope] = _GREY["envelope"]
    g[labels == CLASS_VALUES["nucleolus"]] = _GREY["nucleolus"]
    mito = labels == CLASS_VALUES["mitochondrion"]
    g[mito] = _GREY["mito_matrix"]
    g[crista] = _GREY["mito_crista"]
    g[mito_rim] = _GREY["mito_membrane"]
    g[labels == CLASS_VALUES["endosome"]] = _GREY["endosome_lumen"]
    g[endo_rim] = _GREY["endosome_rim"]
    g[labels == CLASS_VALUES["lysosome"]] = _GREY["lysosome"]
    g[membrane] = _GREY["membrane"]
    g = ndi.gaussian_filter(g, (0.5, 0.8, 0.8))
    # Slow illumination drift across the field of view and slice-to-slice brightness jitter.
    g *= 1.0 + 0.05 * _smooth_noise(rng, shape, (shape[0], shape[1] / 1.5, shape[2] / 1.5))
    g += rng.normal(0.0, 2.0, (shape[0], 1, 1)).astype(np.float32)
    g += rng.normal(0.0, noise, shape).astype(np.float32)
    return np.clip(np.round(g), 0, 255).astype(np.uint8)


def key_slices(cells: np.ndarray, every: int = 20, *, start: int = 0) -> np.ndarray:
    """Instance labels kept on every ``every``-th slice only, as painted key slices.

    Parameters
    ----------
    cells : ndarray, shape (Z, Y, X), integer
        Instance ids.
    every : int
        Keep slices ``start, start + every, ...``.
    start : int
        First kept slice.

    Returns
    -------
    ndarray, shape (Z, Y, X), uint16
        ``cells`` on the kept slices, 0 elsewhere.

    Examples
    --------
    >>> k = key_slices(np.ones((5, 2, 2), np.uint16), every=2)
    >>> k[:, 0, 0].tolist()
    [1, 0, 1, 0, 1]
    """
    cells = np.asarray(cells)
    if cells.ndim != 3:
        raise ValueError(f"cells must be ZYX, got shape {cells.shape}")
    if every < 1:
        raise ValueError(f"every {every} must be >= 1")
    if not 0 <= start < cells.shape[0]:
        raise ValueError(f"start {start} is outside 0..{cells.shape[0] - 1}")
    out = np.zeros(cells.shape, np.uint16)
    out[start::every] = cells[start::every]
    return out
