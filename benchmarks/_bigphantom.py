"""The phantom at real physical scale, computed block by block from a global, seeded object list.

:mod:`segmentation.core.phantom` draws a whole crop at once (tessellation, distance
transforms, rejection sampling against the arrays it draws into), so it cannot make a
volume larger than memory. :class:`BigPhantom` describes the same tissue as *functions
of position*, so any block is computed alone and equals, voxel for voxel, the same
voxels computed in any other block (of any size, in any order):

- **Cells**: seeds on a jittered 3D grid (spacing ``cell_um``, 11.5 µm by default:
  cells of about 8-15 µm). Each cell owns the points where its distance is smallest,
  its distance being an anisotropic metric distance to its seed plus a smooth
  sum-of-sine-products deformation (zero at the seed, so the seed is always inside its
  cell). Points far from every seed are extracellular space; thin extracellular gaps run
  along some borders only; membranes are the bands near the borders.
- **Organelles**, listed per cell from a generator seeded by ``(seed, cell index)`` and
  placed once, by checking the cell function at a few points (inside the cell, away
  from its membrane, not overlapping one another): one lobed nucleus at the seed,
  nucleoli inside it with enclosed nucleoplasm cavities (fenestrations), mitochondria
  (elongated ellipsoids with cristae stripes), endosomes (light lumen, dark rim),
  lysosomes (dark bodies).
- **Protrusions**: tubes of ~100-200 nm diameter that leave their cell, arc out of the
  slice plane and come back into it in the extracellular space 3-8 µm away.
- **Image**: the grey values, texture and noise of the phantom (``_GREY``), a blur in
  Y and X (not Z, so a block needs a halo in Y and X only), a slow illumination
  drift, slice-to-slice brightness jitter and white noise read from a seeded noise
  table at per-slice offsets.

A block evaluates only the cells whose reach touches it and, inside it, prunes with
exact bounds per sub-box (a sub-box deep inside one cell costs no distance evaluation at
all), so the cost is a few dozen array operations per voxel whatever the volume size.
Memory is a few arrays of the block's size.

Deliberately not reproduced: the phantom keeps each cell's largest connected piece (a
global operation); here a small detached fragment of a cell may remain near the
extracellular space. Truth is what the functions say, so it is exact by construction.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from segmentation.core.phantom import _GREY, CLASS_VALUES  # one table of grey values for both phantoms

__all__ = ["BigPhantom", "Block", "CLASS_VALUES", "Tube"]

# Materials: what a voxel is made of; the grey value and the class follow from it.
# Protrusions have their own cytoplasm and membrane materials (same look) so that later
# tubes neither carve a cleft into nor paint over earlier ones.
(_EXTRA, _CYTO, _MEMB, _NUCLEO, _ENVELOPE, _NUCLEOLUS, _MATRIX, _CRISTA, _MITO_MEMB, _LUMEN, _RIM, _LYSO,
 _TUBE, _TUBE_MEMB) = range(14)
_MATERIAL_GREY = np.array(
    [_GREY[k] for k in ("extracellular", "cytoplasm", "membrane", "nucleoplasm", "envelope", "nucleolus",
                        "mito_matrix", "mito_crista", "mito_membrane", "endosome_lumen", "endosome_rim", "lysosome",
                        "cytoplasm", "membrane")],
    np.float32,
)
# Texture before the blur (std of white noise): the blur (sigma 0.8 px in Y and X) keeps
# ~0.35 of it, so cytoplasm ends near the phantom's 6 grey levels and nucleoplasm near 5.
_MATERIAL_TEXTURE = np.zeros(14, np.float32)
_MATERIAL_TEXTURE[[_CYTO, _MITO_MEMB, _MATRIX, _CRISTA, _TUBE]] = 17.0
_MATERIAL_TEXTURE[_NUCLEO] = 14.0
_MATERIAL_CLASS = np.zeros(14, np.uint8)
_MATERIAL_CLASS[[_NUCLEO, _ENVELOPE]] = CLASS_VALUES["nucleus"]
_MATERIAL_CLASS[_NUCLEOLUS] = CLASS_VALUES["nucleolus"]
_MATERIAL_CLASS[[_MATRIX, _CRISTA, _MITO_MEMB]] = CLASS_VALUES["mitochondrion"]
_MATERIAL_CLASS[[_LUMEN, _RIM]] = CLASS_VALUES["endosome"]
_MATERIAL_CLASS[_LYSO] = CLASS_VALUES["lysosome"]

_BLUR_SIGMA = 0.8  # voxels, in Y and X (the phantom's)
HALO = int(4.0 * _BLUR_SIGMA + 0.5)  # gaussian_filter1d's radius at truncate=4
_NOISE = 11.0  # grey levels, the phantom's default
_TABLE = 1031  # side of the (prime) noise table

_WAVES = 3  # sine products per deformation field
_JITTER = 0.33  # of the grid spacing
_METRIC = (0.88, 1.14)  # range of a cell's metric stretch per axis
_CLIP = 2.5  # deformation fields have unit std, clipped here so their effect is bounded
_BORDER_NOISE = 0.035  # of the spacing: std of the deformation of a cell's distance
_RAMP = 0.3  # of the spacing: deformation grows from 0 at the seed to full here
_FAR = 0.68  # of the spacing: farther from every seed is extracellular ...
_FAR_NOISE = 0.035  # ... give or take this much (std)
_LATTICE_NM = 200.0  # cell distances are sampled this finely (at most 16 voxels) and interpolated


@dataclass(frozen=True)
class _Shape:
    """A cell's distance function: seed (nm), metric matrix, deformation waves."""

    id: int
    centre: np.ndarray
    q: np.ndarray
    sig_min: float
    sig_max: float
    freq: np.ndarray  # (K, 3) rad/nm
    phase: np.ndarray  # (K, 3)
    amp: np.ndarray  # (K,), sums to 1


@dataclass(frozen=True)
class _Nucleus:
    centre: np.ndarray
    axes: np.ndarray
    lobes: int
    amp: float
    phase: float
    lo: np.ndarray
    hi: np.ndarray


@dataclass(frozen=True)
class _Ellipsoid:
    """A nucleolus, cavity or cytoplasmic organelle; ``inv`` maps p - centre to unit-sphere coordinates."""

    material: int
    centre: np.ndarray
    axes: np.ndarray
    inv: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    rim: float  # rim thickness as a fraction of the smallest semi-axis (0: none)
    period: float  # cristae period in nm along the long axis (0: none)
    stripe_phase: float


@dataclass(frozen=True)
class Tube:
    """A protrusion of cell ``cell_id``: centreline (N, 3) in nm (ZYX), radius in nm."""

    cell_id: int
    points: np.ndarray
    radius: float


@dataclass(frozen=True)
class _Contents:
    """A cell's nucleus and ellipsoids (nucleoli, then their cavities, then cytoplasmic
    organelles: the painting order), with their boxes stacked for culling."""

    nucleus: _Nucleus
    objects: tuple[_Ellipsoid, ...]
    lo: np.ndarray  # (n, 3) nm
    hi: np.ndarray


@dataclass(frozen=True)
class Block:
    """One block of the volume.

    image : uint8 (Z, Y, X) grey values. classes : uint8 (Z, Y, X), :data:`CLASS_VALUES`
    (0 = cytoplasm or extracellular). cells : (Z, Y, X) cell instance ids (0 = outside
    cells), dtype :attr:`BigPhantom.cells_dtype`.
    """

    image: np.ndarray
    classes: np.ndarray
    cells: np.ndarray


def _rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    return q * np.sign(np.diag(r))


def _waves(rng: np.random.Generator, wavelength: tuple[float, float], k: int = _WAVES) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    freq = 2 * np.pi / rng.uniform(*wavelength, (k, 3))
    phase = rng.uniform(0, 2 * np.pi, (k, 3))
    amp = rng.uniform(0.5, 1.0, k)
    return freq, phase, amp / amp.sum()


def _wave_sum(freq: np.ndarray, phase: np.ndarray, amp: np.ndarray, z: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """sum_k amp_k sin(fz z + pz) sin(fy y + py) sin(fx x + px), in [-1, 1], float32.

    Each sine is taken on the (broadcastable) axis arrays, so a block costs two
    full-size operations per term."""
    out = None
    for f, p, a in zip(freq, phase, amp):
        sz = (np.sin(f[0] * z + p[0]) * a).astype(np.float32)
        sy = np.sin(f[1] * y + p[1]).astype(np.float32)
        sx = np.sin(f[2] * x + p[2]).astype(np.float32)
        term = (sz * sy) * sx
        out = term if out is None else out + term
    assert out is not None
    return out


def _unit_noise(freq: np.ndarray, phase: np.ndarray, amp: np.ndarray, z: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """:func:`_wave_sum` scaled to about unit std (a product of three sines has std
    1/sqrt(8)) and clipped to [-_CLIP, _CLIP], so every field has a known bound."""
    scale = np.float32(math.sqrt(8.0 / float(np.sum(amp**2))))
    return np.clip(_wave_sum(freq, phase, amp, z, y, x) * scale, np.float32(-_CLIP), np.float32(_CLIP))


def _mix(*keys: int) -> int:
    """A 64-bit hash of integers (splitmix64 steps), for per-slice random numbers."""
    h = 0x9E3779B97F4A7C15
    for k in keys:
        h = (h ^ (k & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        h = (h ^ (h >> 27)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
    return h


def _interpolate(values: np.ndarray, axes: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]) -> np.ndarray:
    """Linear interpolation of lattice ``values`` (Lz, Ly, Lx) to voxels: X, then Y, then Z."""
    out = values
    for axis in (2, 1, 0):
        _pos, idx, w = axes[axis]
        lower = np.take(out, idx, axis=axis)
        if w is None:
            out = lower
            continue
        upper = np.take(out, idx + 1, axis=axis)
        wb = w.reshape([-1 if i == axis else 1 for i in range(3)])
        upper -= lower
        upper *= wb
        upper += lower
        out = upper
    return out


def _box_dist(c: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[float, float]:
    """Smallest and largest Euclidean distance from point ``c`` to the box [lo, hi]."""
    near = np.maximum(np.maximum(lo - c, c - hi), 0.0)
    far = np.maximum(np.abs(lo - c), np.abs(hi - c))
    return float(np.sqrt(near @ near)), float(np.sqrt(far @ far))


class BigPhantom:
    """A FIB-SEM-like tumour tissue volume at real scale, evaluated block by block.

    Parameters
    ----------
    shape : (Z, Y, X)
        Volume size in voxels (any size: nothing of the volume's size is allocated).
    voxel_nm : (z, y, x)
        Voxel size in nm (4 nm isotropic for real FIB-SEM; coarser to fit whole cells
        into a small test volume).
    seed : int
        The same seed, shape and voxel size give the same volume, bit for bit.
    cell_um : float
        Grid spacing of the cell seeds in µm (cells about 0.7-1.3 times this across).

    Examples
    --------
    >>> ph = BigPhantom((16, 64, 64), voxel_nm=(100, 100, 100), seed=1)
    >>> b = ph.block((0, 16), (0, 64), (0, 64))
    >>> b.image.shape, b.image.dtype, b.classes.dtype
    ((16, 64, 64), dtype('uint8'), dtype('uint8'))
    """

    def __init__(self, shape: tuple[int, int, int], *, voxel_nm: tuple[float, float, float] = (4.0, 4.0, 4.0),
                 seed: int = 0, cell_um: float = 11.5) -> None:
        shape_t = tuple(int(s) for s in shape)
        if len(shape_t) != 3 or min(shape_t) < 1:
            raise ValueError(f"shape {tuple(shape)} must be three positive ints (Z, Y, X)")
        vox = tuple(float(v) for v in voxel_nm)
        if len(vox) != 3 or not all(math.isfinite(v) and v > 0 for v in vox):
            raise ValueError(f"voxel_nm {tuple(voxel_nm)} must be three positive numbers")
        if not 1.0 <= cell_um <= 100.0:
            raise ValueError(f"cell_um {cell_um} must be in 1..100")
        self.shape: tuple[int, int, int] = shape_t
        self.voxel_nm: tuple[float, float, float] = vox
        self.seed = int(seed)
        self.spacing = float(cell_um) * 1000.0
        S = self.spacing
        vmax = max(vox)
        self._vox = np.array(vox)
        extent = np.array(shape_t) * self._vox
        # Grid indices -1..K on each axis: one ring of cells around the volume.
        self._kmax = np.ceil(extent / S).astype(int)
        self._dims = self._kmax + 2
        n_ids = int(np.prod(self._dims))
        self.cells_dtype = np.dtype(np.uint16 if n_ids < 2**16 else np.uint32)
        # Thicknesses at least about a voxel, so every structure shows at coarse voxel sizes.
        self._membrane = max(8.0, vmax)  # nm
        self._gap = max(25.0, 1.5 * vmax)  # extracellular cleft width
        self._deep = self._gap + 6 * self._membrane + 80.0  # s-units: organelles keep this far from borders
        self._far_deep = 3 * self._membrane + 40.0
        self._B = _BORDER_NOISE * S
        self._far = _FAR * S
        self._far_amp = _FAR_NOISE * S
        self._dmax = self._far + _CLIP * self._far_amp + self._deep + 1.0  # distances are clamped here
        self._lattice = tuple(int(min(16, max(1, round(_LATTICE_NM / v)))) for v in vox)
        # Everything a cell can reach is within this (nm) of its seed, for any metric.
        self._reach = (self._dmax + _CLIP * self._B) * _METRIC[1] + 1.0
        rng = np.random.default_rng([self.seed, 0])
        self._far_waves = _waves(rng, (0.3 * S, 0.7 * S))
        self._gap_waves = _waves(rng, (0.2 * S, 0.5 * S))
        span = max(float(extent[1:].max()), 10_000.0)
        self._illum_waves = _waves(rng, (0.8 * span, 1.6 * span), 2)
        self._illum_waves[0][:, 0] = 0.0  # no Z term: a YX pattern ...
        self._illum_waves[1][:, 0] = np.pi / 2  # ... times sin(pi / 2) = 1
        table = np.random.default_rng([self.seed, 4]).standard_normal((_TABLE, _TABLE)).astype(np.float32)
        self._table = np.tile(table, (2, 2))  # any window up to _TABLE wide is a view
        self._tube_reach = max(self._reach, self.spacing) + 8_000.0  # a tube ends < 8 µm from its cell's body

    # ------------------------------------------------------------------ the object list

    def cell_id(self, k: tuple[int, int, int]) -> int:
        """Instance id of the cell of grid index ``k`` (each axis -1..K)."""
        kz, ky, kx = (int(v) + 1 for v in k)
        return 1 + (kz * int(self._dims[1]) + ky) * int(self._dims[2]) + kx

    @functools.lru_cache(maxsize=4096)
    def _shape(self, k: tuple[int, int, int]) -> _Shape:
        S = self.spacing
        rng = np.random.default_rng([self.seed, 1, *(v + 1 for v in k)])
        centre = (np.array(k) + 0.5 + rng.uniform(-_JITTER, _JITTER, 3)) * S
        rot = _rotation(rng)
        stretch = rng.uniform(*_METRIC, 3)
        q = rot.T @ np.diag(1.0 / stretch**2) @ rot
        freq, phase, amp = _waves(rng, (0.35 * S, 0.8 * S))
        return _Shape(self.cell_id(k), centre, q, 1.0 / stretch.max(), 1.0 / stretch.min(), freq, phase, amp)

    def _grid_range(self, lo: np.ndarray, hi: np.ndarray, reach: float) -> list[tuple[int, int, int]]:
        """Grid indices of the cells whose seed can lie within ``reach`` of the box [lo, hi] (nm)."""
        S = self.spacing
        a = np.maximum(np.ceil((lo - reach) / S - 0.5 - _JITTER), -1).astype(int)
        b = np.minimum(np.floor((hi + reach) / S - 0.5 + _JITTER), self._kmax).astype(int)
        if np.any(b < a):
            return []
        return [(z, y, x) for z in range(a[0], b[0] + 1) for y in range(a[1], b[1] + 1) for x in range(a[2], b[2] + 1)]

    def _cells_near(self, lo: np.ndarray, hi: np.ndarray, reach: float) -> list[_Shape]:
        out = []
        for k in self._grid_range(lo, hi, reach):
            sh = self._shape(k)
            near, _ = _box_dist(sh.centre, lo, hi)
            if near <= reach:
                out.append(sh)
        return out

    def _distance(self, sh: _Shape, z: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        """The cell's deformed distance (nm, float32) at broadcastable ZYX positions (nm, float64)."""
        q = sh.q
        dz = (z - sh.centre[0]).astype(np.float32)
        dy = (y - sh.centre[1]).astype(np.float32)
        dx = (x - sh.centre[2]).astype(np.float32)
        f = np.float32
        t1 = f(q[0, 0]) * dz * dz + f(2 * q[0, 1]) * dz * dy + f(q[1, 1]) * dy * dy
        t2 = f(q[2, 2]) * dx * dx + f(2 * q[0, 2]) * dz * dx
        t3 = f(2 * q[1, 2]) * dy * dx
        r = np.sqrt(np.maximum((t1 + t2) + t3, f(0)))
        ramp = np.minimum(r * f(1.0 / (_RAMP * self.spacing)), f(1))
        ramp *= _unit_noise(sh.freq, sh.phase, sh.amp, z, y, x)
        ramp *= f(self._B)
        r += ramp
        return r

    def _far_field(self, z: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        return np.float32(self._far) + np.float32(self._far_amp) * _unit_noise(*self._far_waves, z, y, x)

    def _gap_field(self, z: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        return _unit_noise(*self._gap_waves, z, y, x)

    def _classify(self, ids: np.ndarray, first: np.ndarray, second: np.ndarray, far: np.ndarray,
                  gap: np.ndarray) -> tuple[np.ndarray, ...]:
        """(ids uint32, cell, membrane, deep) from the nearest and second-nearest distances.

        ``second`` is clamped at ``_dmax``; only comparisons with bands narrower than
        ``_deep`` are made on ``second - first``, so cells farther than that never matter."""
        f = np.float32
        s = second - first
        inside = first <= far
        gappy = gap > f(0.2)
        cell = inside & ~(gappy & (s < f(self._gap)))
        membrane = cell & ((s < np.where(gappy, f(self._gap), f(0)) + f(2 * self._membrane))
                           | (first > far - f(self._membrane)))
        deep = cell & (s >= f(self._deep)) & (first <= far - f(self._far_deep))
        ids[~cell] = 0
        return ids, cell, membrane, deep

    def owner(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(cell id, deep inside its cell) at points (N, 3) in nm, from the unsampled functions.

        Blocks sample the distances on a lattice of a few tens of nm and interpolate, so a
        block may differ from this by a fraction of a nm at a border: used for placing
        objects, with margins."""
        pts = np.asarray(points, float).reshape(-1, 3)
        if len(pts) == 0:
            return np.zeros(0, np.uint32), np.zeros(0, bool)
        z, y, x = pts[:, 0], pts[:, 1], pts[:, 2]
        first = np.full(len(pts), np.float32(self._dmax), np.float32)
        second = first.copy()
        ids = np.zeros(len(pts), np.uint32)
        for sh in self._cells_near(pts.min(axis=0), pts.max(axis=0), self._reach):
            near = np.flatnonzero(((pts - sh.centre) ** 2).sum(axis=1) < self._reach**2)
            if len(near) == 0:
                continue  # farther than its reach: clamped at _dmax anyway
            d = self._distance(sh, z[near], y[near], x[near])
            f1 = first[near]
            closer = d < f1
            second[near] = np.minimum(second[near], np.where(closer, f1, d))
            first[near] = np.minimum(f1, d)
            ids[near[closer]] = sh.id
        ids, _cell, _memb, deep = self._classify(ids, first, second, self._far_field(z, y, x), self._gap_field(z, y, x))
        return ids, deep

    @functools.lru_cache(maxsize=1024)
    @functools.lru_cache(maxsize=4096)
    def _nucleus(self, k: tuple[int, int, int]) -> _Nucleus:
        """A lobed ellipsoid at the seed, smaller than the distance to the nearest other seed allows."""
        sh = self._shape(k)
        S, vmax = self.spacing, float(self._vox.max())
        rng = np.random.default_rng([self.seed, 7, *(v + 1 for v in k)])
        c = sh.centre
        neighbours = [self._shape(n) for n in self._grid_range(c, c, 2.0 * S) if n != k]
        gap = min(float(np.linalg.norm(n.centre - c)) for n in neighbours) if neighbours else S
        size = min(S * rng.uniform(0.25, 0.3), 0.42 * gap)
        axes = size * rng.uniform(0.85, 1.12, 3)
        lobes = int(rng.integers(2, 4))
        amp = float(rng.uniform(0.08, 0.2) if sh.id % 2 else rng.uniform(0.0, 0.05))
        half = axes * (1 + amp) + vmax
        return _Nucleus(c, axes, lobes, amp, float(rng.uniform(0, 2 * np.pi)), c - half, c + half)

    @functools.lru_cache(maxsize=1024)
    def _contents(self, k: tuple[int, int, int]) -> _Contents:
        sh = self._shape(k)
        S, vmax = self.spacing, float(self._vox.max())
        rng = np.random.default_rng([self.seed, 2, *(v + 1 for v in k)])
        c = sh.centre
        nucleus = self._nucleus(k)
        axes, amp = nucleus.axes, nucleus.amp

        nucleoli: list[_Ellipsoid] = []
        cavities: list[_Ellipsoid] = []
        core = float(axes.min()) * (1 - amp - 0.12)
        shell = max(40.0, 1.5 * vmax)
        for _ in range(int(rng.integers(1, 4))):
            r = max(rng.uniform(450, 900), 3 * vmax)
            ax = r * np.array([0.85, 1.0, 1.15])
            room = core - ax.max() - shell
            if room <= 0:
                break
            for _try in range(20):
                d = rng.standard_normal(3)
                pos = c + d / np.linalg.norm(d) * room * rng.uniform(0, 1) ** (1 / 3)
                if all(np.linalg.norm(pos - o.centre) > ax.max() + o.axes.max() + shell for o in nucleoli):
                    break
            else:
                continue
            nucleolus = self._ellipsoid(_NUCLEOLUS, pos, ax, _rotation(rng))
            nucleoli.append(nucleolus)
            holes: list[np.ndarray] = []
            hr_max = min(160.0, 0.3 * ax.min())
            for _h in range(int(rng.integers(2, 6)) * 10):
                if len(holes) >= 5:
                    break
                hr = max(rng.uniform(70.0, max(hr_max, 70.0)), 1.3 * vmax)
                reach = ax.min() - hr - shell
                if reach <= 0:
                    break
                d = rng.standard_normal(3)
                hc = pos + d / np.linalg.norm(d) * reach * rng.uniform(0.15, 1.0) ** (1 / 3)
                if any(np.linalg.norm(hc - o) < hr + 2 * shell + 200 for o in holes):
                    continue
                holes.append(hc)
                cavities.append(self._ellipsoid(_NUCLEO, hc, np.full(3, hr), np.eye(3)))

        # Cytoplasmic organelles: candidates in a ball around the seed, outside the nucleus,
        # kept when their centre and six extreme points lie deep inside this cell and they
        # do not overlap one another (capsules: five points along the long axis, each with
        # the larger short semi-axis plus a margin as radius).
        counts = {_MATRIX: 220, _LUMEN: 60, _LYSO: 40}
        n = {m: 3 * c for m, c in counts.items()}
        sizes = np.concatenate([
            np.stack([rng.uniform(500, 1300, n[_MATRIX]), rng.uniform(140, 230, n[_MATRIX]),
                      rng.uniform(130, 210, n[_MATRIX])], axis=1),
            rng.uniform(100, 250, (n[_LUMEN], 1)) * rng.uniform(0.85, 1.15, (n[_LUMEN], 3)),
            rng.uniform(150, 400, (n[_LYSO], 1)) * rng.uniform(0.85, 1.15, (n[_LYSO], 3)),
        ])
        sizes = np.maximum(sizes, 1.2 * vmax)
        materials = np.repeat(list(counts), list(n.values()))
        total = len(sizes)
        d = rng.standard_normal((total, 3))
        pos = c + d / np.linalg.norm(d, axis=1, keepdims=True) * 0.5 * S * rng.uniform(0, 1, (total, 1)) ** (1 / 3)
        qm, rm = np.linalg.qr(rng.standard_normal((total, 3, 3)))
        rots = qm * np.sign(np.diagonal(rm, axis1=1, axis2=2))[:, None, :]
        periods = np.maximum(rng.uniform(80, 140, total), 3.2 * vmax)
        phases = rng.uniform(0, 2 * np.pi, total)
        clear = np.linalg.norm((pos - c) / (axes * (1 + amp) + sizes.max(axis=1, keepdims=True) + 150.0), axis=1) >= 1.0
        vecs = rots * sizes[:, :, None]  # rows: the semi-axis vectors in ZYX
        probes = np.concatenate([pos[:, None], pos[:, None] + vecs, pos[:, None] - vecs], axis=1)
        ids, deep = self.owner(probes.reshape(-1, 3))
        good = clear & np.all((ids.reshape(total, -1) == sh.id) & deep.reshape(total, -1), axis=1)
        organelles: list[_Ellipsoid] = []
        placed_c = np.zeros((total, 3))  # centres, capsule points, radii and half-lengths of those kept
        placed_pts = np.zeros((total, 5, 3))
        placed_r = np.zeros(total)
        placed_l = np.zeros(total)
        m = 0
        along = np.linspace(-1.0, 1.0, 5)[:, None]
        for i in np.flatnonzero(good):
            r = float(np.sort(sizes[i])[1]) + 60.0
            half = vecs[i, 0] * max(0.0, 1.0 - r / float(sizes[i, 0]))
            length = float(np.linalg.norm(half))
            near = np.flatnonzero(np.linalg.norm(placed_c[:m] - pos[i], axis=1) < placed_l[:m] + length + placed_r[:m] + r)
            pts = pos[i] + along * half
            if len(near):
                gaps = np.sqrt(((placed_pts[near][:, :, None, :] - pts[None, None]) ** 2).sum(-1)).min(axis=(1, 2))
                if np.any(gaps < placed_r[near] + r):
                    continue
            organelles.append(self._ellipsoid(int(materials[i]), pos[i], sizes[i], rots[i],
                                              period=float(periods[i]), phase=float(phases[i])))
            placed_c[m], placed_pts[m], placed_r[m], placed_l[m] = pos[i], pts, r, length
            m += 1
        objects = (*nucleoli, *cavities, *organelles)
        lo = np.array([e.lo for e in objects]).reshape(-1, 3)
        hi = np.array([e.hi for e in objects]).reshape(-1, 3)
        return _Contents(nucleus, objects, lo, hi)

    def _ellipsoid(self, material: int, centre: np.ndarray, axes: np.ndarray, rot: np.ndarray, *,
                   period: float = 0.0, phase: float = 0.0) -> _Ellipsoid:
        """``rot`` rows are the unit axes (ZYX); ``period`` (nm) and ``phase`` are the cristae's."""
        vmax = float(self._vox.max())
        half = np.abs(rot.T) @ axes + vmax
        rim = 0.0
        if material == _MATRIX:
            rim = max(8.0, vmax) / float(axes.min())
        else:
            period = 0.0
        if material == _LUMEN:
            rim = max(10.0, vmax) / float(axes.min())
        return _Ellipsoid(material, centre, axes, rot / axes[:, None], centre - half, centre + half, rim, period, phase)

    @functools.lru_cache(maxsize=4096)
    def _tubes(self, k: tuple[int, int, int]) -> tuple[Tube, ...]:
        """Up to two protrusions: tubes that leave the cell body in the slice plane of their
        base, rise out of it and come back down into it 2-6 µm away, pushing into whatever
        is there (extracellular space or a neighbour, never a nucleus)."""
        sh = self._shape(k)
        vmax = float(self._vox.max())
        rng = np.random.default_rng([self.seed, 3, *(v + 1 for v in k)])
        tubes: list[Tube] = []
        step = max(50.0, vmax / 2)
        for _try in range(6):
            if len(tubes) >= 2:
                break
            theta = rng.uniform(0, 2 * np.pi)
            direction = np.array([0.0, np.sin(theta), np.cos(theta)])
            radius = max(rng.uniform(50.0, 100.0), vmax)
            length = rng.uniform(2000.0, 6000.0)
            height = rng.uniform(500.0, 2000.0) * (1 if rng.integers(0, 2) else -1)
            ray = sh.centre + np.arange(1, int(self.spacing / step))[:, None] * step * direction
            ids, _ = self.owner(ray)
            out = np.flatnonzero(ids != sh.id)
            if len(out) == 0 or out[0] < 4:
                continue
            back = 3 * step + radius
            base = ray[out[0]] - back * direction
            s = np.linspace(0.0, 1.0, 33)
            pts = base + s[:, None] * (length + back) * direction
            pts[:, 0] += height * np.sin(np.pi * np.clip(s * 1.12, 0, 1))
            ids, _ = self.owner(pts)
            if np.count_nonzero(ids != sh.id) < len(s) // 3 or self._in_a_nucleus(pts, radius + 500.0):
                continue
            tubes.append(Tube(sh.id, pts, float(radius)))
        return tuple(tubes)

    def _in_a_nucleus(self, pts: np.ndarray, margin: float) -> bool:
        """Whether any point lies within ``margin`` (nm, roughly) of any cell's nucleus."""
        for k in self._grid_range(pts.min(axis=0), pts.max(axis=0), self._reach):
            n = self._nucleus(k)
            u = (pts - n.centre) / (n.axes * (1 + n.amp) + margin)
            if np.any(np.einsum("ij,ij->i", u, u) < 1.0):
                return True
        return False

    def tubes_in(self, lo: np.ndarray, hi: np.ndarray) -> list[Tube]:
        """Protrusions of every cell that could reach the box [lo, hi] (nm), in a fixed order."""
        out = []
        for k in self._grid_range(lo, hi, self._tube_reach):
            for t in self._tubes(k):
                if np.all(t.points.min(axis=0) - 2 * t.radius - self._gap <= hi) and \
                        np.all(t.points.max(axis=0) + 2 * t.radius + self._gap >= lo):
                    out.append(t)
        return out

    def nucleus_centres(self) -> dict[int, np.ndarray]:
        """Cell id -> nucleus centre in voxels (ZYX, float) for every cell of the grid."""
        return {self.cell_id(k): self._shape(k).centre / self._vox
                for k in self._grid_range(np.zeros(3), np.array(self.shape) * self._vox, 0.0)}

    # ------------------------------------------------------------------ blocks

    def block(self, z: tuple[int, int], y: tuple[int, int], x: tuple[int, int]) -> Block:
        """The voxels ``[z0, z1) x [y0, y1) x [x0, x1)`` (may reach outside the volume).

        Returns
        -------
        Block
            image, classes (uint8) and cells (:attr:`cells_dtype`), each of shape
            ``(z1 - z0, y1 - y0, x1 - x0)``, equal to the same voxels of any other block.
        """
        (z0, z1), (y0, y1), (x0, x1) = ((int(a), int(b)) for a, b in (z, y, x))
        if z1 <= z0 or y1 <= y0 or x1 <= x0:
            raise ValueError(f"block {(z0, z1), (y0, y1), (x0, x1)} is empty")
        h = HALO
        ext = (z1 - z0, y1 - y0 + 2 * h, x1 - x0 + 2 * h)
        ids = np.zeros(ext, np.uint32)
        mat = np.zeros(ext, np.uint8)
        # Sub-boxes of about a micrometre (32..256 voxels a side, at most 2 M voxels).
        want = [int(min(256, max(32, round(1000.0 / v)))) for v in self.voxel_nm]
        n_yx = [max(1, round(e / w)) for e, w in zip(ext[1:], want[1:])]
        plane = math.ceil(ext[1] / n_yx[0]) * math.ceil(ext[2] / n_yx[1])
        n_z = max(1, round(ext[0] / max(1, min(want[0], 2_000_000 // plane))))
        cuts = [np.linspace(0, e, n + 1).round().astype(int) for e, n in zip(ext, (n_z, *n_yx))]
        origin = (z0, y0 - h, x0 - h)
        tubes = self.tubes_in(np.array(origin) * self._vox, (np.array(origin) + np.array(ext) - 1) * self._vox)
        for a0, a1 in zip(cuts[0][:-1], cuts[0][1:]):
            for b0, b1 in zip(cuts[1][:-1], cuts[1][1:]):
                for c0, c1 in zip(cuts[2][:-1], cuts[2][1:]):
                    box = (slice(a0, a1), slice(b0, b1), slice(c0, c1))
                    self._fill(ids[box], mat[box], (origin[0] + int(a0), origin[1] + int(b0), origin[2] + int(c0)), tubes)
        image = self._render(mat, z0, (y0 - h, x0 - h))
        inner = (slice(None), slice(h, ext[1] - h), slice(h, ext[2] - h))
        return Block(image, _MATERIAL_CLASS[mat[inner]], ids[inner].astype(self.cells_dtype))

    def _axes_nm(self, start: tuple[int, ...], shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        z = ((start[0] + np.arange(shape[0])) * self.voxel_nm[0])[:, None, None]
        y = ((start[1] + np.arange(shape[1])) * self.voxel_nm[1])[None, :, None]
        x = ((start[2] + np.arange(shape[2])) * self.voxel_nm[2])[None, None, :]
        return z, y, x

    def _fill(self, ids: np.ndarray, mat: np.ndarray, start: tuple[int, ...], tubes: list[Tube]) -> None:
        """Cells, membranes, organelles and protrusions of one sub-box, into views ``ids`` and ``mat``.

        The cell distances, the far threshold and the gap field are computed on a global
        lattice (every ``_lattice`` voxels) and interpolated linearly, one axis after the
        other, so a voxel's value depends only on the lattice points around it, whatever
        the block. The lattice also decides exactly which cells can matter here: a cell
        farther than ``_deep`` beyond another at every lattice point of the box is farther
        at every interpolated voxel too, and a box whose lattice points are all deep in
        one cell is deep in it at every voxel (no distance is interpolated then).
        """
        shape = ids.shape
        lo = np.array(start) * self._vox
        hi = (np.array(start) + np.array(shape) - 1) * self._vox
        shapes = self._cells_near(lo, hi, self._reach)
        axes = [self._lattice_axis(a, start[a], shape[a]) for a in range(3)]
        lz, ly, lx = (ax[0].reshape([-1 if i == a else 1 for i in range(3)]) for a, ax in enumerate(axes))
        dist = [self._distance(sh, lz, ly, lx) for sh in shapes]
        far = self._far_field(lz, ly, lx)
        f = np.float32
        keep = []
        for j, dj in enumerate(dist):
            if dj.min() >= f(self._dmax):
                continue
            if any(i != j and float((dj - di).min()) > self._deep for i, di in enumerate(dist)):
                continue
            keep.append(j)
        deep: np.ndarray | None
        if len(keep) == 1 and float((dist[keep[0]] - far).max()) <= -self._far_deep:
            ids[...] = shapes[keep[0]].id  # deep inside one cell: no border, no extracellular space here
            mat[...] = _CYTO
            deep = None
        elif all(float((dist[j] - far).min()) > 0 for j in keep):
            ids[...] = 0  # beyond every cell's far threshold: extracellular space only
            mat[...] = _EXTRA
            keep = []
            deep = np.zeros(shape, bool)
        else:
            first = np.full(shape, f(self._dmax), f)
            second = np.full(shape, f(self._dmax), f)
            cell_ids = np.zeros(shape, np.uint32)
            for j in keep:
                d = _interpolate(dist[j], axes)
                closer = d < first
                np.minimum(second, np.where(closer, first, d), out=second)
                np.minimum(first, d, out=first)
                cell_ids[closer] = shapes[j].id
                del d, closer
            gap = _interpolate(self._gap_field(lz, ly, lx), axes)
            cell_ids, cell, membrane, deep = self._classify(cell_ids, first, second, _interpolate(far, axes), gap)
            del first, second, gap
            ids[...] = cell_ids
            mat[...] = np.where(membrane, np.uint8(_MEMB), np.where(cell, np.uint8(_CYTO), np.uint8(_EXTRA)))
        for j in keep:
            sh = shapes[j]
            contents = self._contents(self._index_of(sh))
            self._paint_nucleus(contents.nucleus, sh.id, ids, mat, deep, start)
            hits = np.flatnonzero(np.all(contents.lo <= hi, axis=1) & np.all(contents.hi >= lo, axis=1))
            for i in hits:
                self._paint_ellipsoid(contents.objects[i], sh.id, ids, mat, deep, start)
        for tube in tubes:
            self._paint_tube(tube, ids, mat, start)

    def _lattice_axis(self, axis: int, start: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Lattice positions (nm) covering voxels start..start+n-1 of ``axis``, each voxel's
        lower lattice point (index into them) and its weight (None: on the lattice)."""
        c = self._lattice[axis]
        g = start + np.arange(n)
        first = start // c
        last = (start + n - 1) // c + (1 if c > 1 else 0)
        pos = np.arange(first, last + 1) * c * self.voxel_nm[axis]
        if c == 1:
            return pos, g - first, None
        return pos, g // c - first, ((g % c) / c).astype(np.float32)

    def _index_of(self, sh: _Shape) -> tuple[int, int, int]:
        i = sh.id - 1
        i, kx = divmod(i, int(self._dims[2]))
        kz, ky = divmod(i, int(self._dims[1]))
        return (kz - 1, ky - 1, kx - 1)

    def _sub(self, lo_nm: np.ndarray, hi_nm: np.ndarray, start: tuple[int, ...], shape: tuple[int, ...],
             ) -> tuple[tuple[slice, ...], tuple[int, ...]] | None:
        """The part of a sub-box (voxels from ``start``) inside the object box [lo_nm, hi_nm]."""
        a = np.maximum(np.ceil(lo_nm / self._vox).astype(int) - np.array(start), 0)
        b = np.minimum(np.floor(hi_nm / self._vox).astype(int) + 1 - np.array(start), shape)
        if np.any(b <= a):
            return None
        return tuple(slice(int(i), int(j)) for i, j in zip(a, b)), tuple(int(s) + int(i) for s, i in zip(start, a))

    def _allowed(self, cell_id: int, ids: np.ndarray, deep: np.ndarray | None, box: tuple[slice, ...]) -> np.ndarray | None:
        """Where an organelle of ``cell_id`` may be painted inside ``box`` (None: everywhere)."""
        if deep is None:
            return None
        return deep[box] & (ids[box] == cell_id)

    def _paint_nucleus(self, n: _Nucleus, cell_id: int, ids: np.ndarray, mat: np.ndarray, deep: np.ndarray | None,
                       start: tuple[int, ...]) -> None:
        got = self._sub(n.lo, n.hi, start, ids.shape)
        if got is None:
            return
        box, at = got
        z, y, x = self._axes_nm(at, tuple(s.stop - s.start for s in box))
        f = np.float32
        uz = ((z - n.centre[0]) / n.axes[0]).astype(f)
        uy = ((y - n.centre[1]) / n.axes[1]).astype(f)
        ux = ((x - n.centre[2]) / n.axes[2]).astype(f)
        rho = np.sqrt((uz * uz + uy * uy) + ux * ux)
        radius = (f(1) + f(n.amp) * np.cos(f(n.lobes) * np.arctan2(uy, ux) + f(n.phase))) - f(0.1) * uz * uz
        inside = rho <= radius
        allowed = self._allowed(cell_id, ids, deep, box)
        if allowed is not None:
            inside &= allowed
        env = max(30.0, float(self._vox.max())) / float(n.axes.mean())
        region = mat[box]
        region[inside] = _NUCLEO
        region[inside & (rho > radius - f(env))] = _ENVELOPE

    def _paint_ellipsoid(self, e: _Ellipsoid, cell_id: int, ids: np.ndarray, mat: np.ndarray, deep: np.ndarray | None,
                         start: tuple[int, ...]) -> None:
        got = self._sub(e.lo, e.hi, start, ids.shape)
        if got is None:
            return
        box, at = got
        z, y, x = self._axes_nm(at, tuple(s.stop - s.start for s in box))
        f = np.float32
        dz = (z - e.centre[0]).astype(f)
        dy = (y - e.centre[1]).astype(f)
        dx = (x - e.centre[2]).astype(f)
        u = [(f(e.inv[i, 0]) * dz + f(e.inv[i, 1]) * dy) + f(e.inv[i, 2]) * dx for i in range(3)]
        rho2 = (u[0] * u[0] + u[1] * u[1]) + u[2] * u[2]
        inside = rho2 <= f(1)
        region = mat[box]
        if e.material == _NUCLEOLUS:
            inside &= region == _NUCLEO  # inside the nucleus, off its envelope
        elif e.material == _NUCLEO:
            inside &= region == _NUCLEOLUS  # a cavity of a nucleolus
        else:
            inside &= region == _CYTO
            allowed = self._allowed(cell_id, ids, deep, box)
            if allowed is not None:
                inside &= allowed
        region[inside] = e.material
        if e.period:
            stripes = np.cos(u[0] * f(2 * np.pi * float(e.axes[0]) / e.period) + f(e.stripe_phase)) > f(0.35)
            region[inside & stripes] = _CRISTA
        if e.rim:
            rim = inside & (rho2 > f((1 - e.rim) ** 2 if e.rim < 1 else 0.0))
            region[rim] = _MITO_MEMB if e.material == _MATRIX else _RIM

    def _paint_tube(self, t: Tube, ids: np.ndarray, mat: np.ndarray, start: tuple[int, ...]) -> None:
        """A protrusion: its cell's cytoplasm inside a membrane wall, and where it pushes
        into another cell, a thin extracellular cleft and that cell's membrane around it.
        Organelles and nuclei it meets keep their voxels (planning keeps tubes off nuclei)."""
        r, wall, cleft = t.radius, max(self._membrane, float(self._vox.max())), self._gap
        outer = r + cleft + wall
        pad = outer + float(self._vox.max())
        got = self._sub(t.points.min(axis=0) - pad, t.points.max(axis=0) + pad, start, ids.shape)
        if got is None:
            return
        tbox, tat = got
        dist2 = np.full(tuple(s.stop - s.start for s in tbox), np.inf, np.float32)
        f = np.float32
        for p, q in zip(t.points[:-1], t.points[1:]):
            seg = self._sub(np.minimum(p, q) - pad, np.maximum(p, q) + pad, tat, dist2.shape)
            if seg is None:
                continue
            box, at = seg
            z, y, x = self._axes_nm(at, tuple(s.stop - s.start for s in box))
            v = q - p
            vv = float(v @ v)
            dz, dy, dx = ((c - pc).astype(f) for c, pc in zip((z, y, x), p))
            tt = np.clip(((f(v[0] / vv) * dz + f(v[1] / vv) * dy) + f(v[2] / vv) * dx), f(0), f(1))
            ez, ey, ex = dz - tt * f(v[0]), dy - tt * f(v[1]), dx - tt * f(v[2])
            np.minimum(dist2[box], (ez * ez + ey * ey) + ex * ex, out=dist2[box])
        if not np.any(dist2 <= f(outer * outer)):
            return
        region_ids, region = ids[tbox], mat[tbox]
        soft = region <= _MEMB  # extracellular, cytoplasm or a membrane: what a tube may push into
        other = soft & (region_ids != t.cell_id)
        sheath = other & (region_ids != 0) & (dist2 <= f(outer * outer)) & (dist2 > f(r * r))
        region[sheath] = _MEMB
        gap = sheath & (dist2 <= f((r + cleft) ** 2))
        region[gap] = _EXTRA
        region_ids[gap] = 0
        inside = soft & (dist2 <= f(r * r))
        region_ids[inside] = t.cell_id
        region[inside] = _TUBE
        region[inside & (dist2 > f(max(r - wall, 0.0) ** 2))] = _TUBE_MEMB

    # ------------------------------------------------------------------ image

    def _render(self, mat: np.ndarray, z0: int, yx0: tuple[int, int]) -> np.ndarray:
        """Grey values of a (Z, Y + 2 halo, X + 2 halo) material block, cropped to the block."""
        nz, ny, nx = mat.shape
        h = HALO
        _, y, x = self._axes_nm((0, *yx0), (1, ny, nx))
        # Slow illumination drift across the field of view (the same in every slice).
        illum = (np.float32(1) + np.float32(0.05) * _unit_noise(*self._illum_waves, np.zeros((1, 1, 1)), y, x))[0]
        rows = np.arange(ny) + yx0[0]
        cols = np.arange(nx) + yx0[1]
        out = np.empty((nz, ny - 2 * h, nx - 2 * h), np.uint8)
        for i in range(nz):
            z = z0 + i
            m = mat[i]
            g = _MATERIAL_GREY[m] + _MATERIAL_TEXTURE[m] * self._noise(z, 0, rows, cols)
            g = ndi.gaussian_filter1d(g, _BLUR_SIGMA, axis=0, truncate=4.0, mode="nearest")
            g = ndi.gaussian_filter1d(g, _BLUR_SIGMA, axis=1, truncate=4.0, mode="nearest")
            g *= illum
            u1, u2 = (_mix(self.seed, 5, z, j) / 2.0**64 for j in (0, 1))
            g += np.float32(2.0 * math.sqrt(-2.0 * math.log(max(u1, 1e-300))) * math.cos(2 * math.pi * u2))
            g += np.float32(_NOISE) * self._noise(z, 1, rows, cols)
            out[i] = np.clip(np.rint(g[h:ny - h, h:nx - h]), 0, 255)
        return out

    def _noise(self, z: int, which: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Unit white noise of slice ``z`` at global rows and columns: a window of the
        seeded table at an offset drawn for (z, which)."""
        h = _mix(self.seed, 6, z, which)
        oy, ox = h % _TABLE, (h >> 32) % _TABLE
        r0, c0 = (int(rows[0]) + oy) % _TABLE, (int(cols[0]) + ox) % _TABLE
        if len(rows) <= _TABLE and len(cols) <= _TABLE:
            return self._table[r0:r0 + len(rows), c0:c0 + len(cols)]
        return self._table[((rows + oy) % _TABLE)[:, None], ((cols + ox) % _TABLE)[None, :]]
