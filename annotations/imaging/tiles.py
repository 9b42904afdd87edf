"""Render 2D tiles of image and label pyramid levels as PNG/WebP bytes.

A tile is a ``tile x tile`` window of one plane of one pyramid level:

=====  ======  =====  =====  ===================================
axis   plane   rows   cols   read from a ZYX array
=====  ======  =====  =====  ===================================
"z"    XY      y      x      ``arr[index, r0:r1, c0:c1]``
"y"    XZ      z      x      ``arr[r0:r1, index, c0:c1]``
"x"    YZ      z      y      ``arr[r0:r1, c0:c1, index]``
=====  ======  =====  =====  ===================================

``index`` is the voxel coordinate along ``axis`` in that level's voxels; tile ``(ty,
tx)`` covers rows ``ty*tile .. (ty+1)*tile`` and columns ``tx*tile .. (tx+1)*tile``.
Edge tiles are smaller, never padded. Only that window is read (zarr decodes just the
chunks it touches). Anything outside the level raises ``IndexError``; malformed
arguments raise ``ValueError``; a view maps both to 404/400.

Encoding uses OpenCV (PNG at compression level 1, the fastest that still deflates;
WebP lossy for images, lossless for labels so class colours stay exact).

Instance colours (ids without a fixed class colour) come from :func:`instance_color`,
a 32-bit integer hash that a browser can reproduce exactly::

    h = id >>> 0; h ^= h >>> 16; h = Math.imul(h, 0x7feb352d) >>> 0;
    h ^= h >>> 15; h = Math.imul(h, 0x846ca68b) >>> 0; h ^= h >>> 16;
    rgb = [64 + (h & 255) % 192, 64 + ((h >>> 8) & 255) % 192, 64 + ((h >>> 16) & 255) % 192]
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, Literal

import cv2
import numpy as np

__all__ = [
    "Axis",
    "TileFormat",
    "MAX_TILE",
    "plane_shape",
    "tile_grid",
    "read_tile",
    "render_image_tile",
    "render_label_tile",
    "instance_color",
    "instance_colors",
    "tile_etag",
    "MEDIA_TYPES",
]

Axis = Literal["z", "y", "x"]
TileFormat = Literal["png", "webp"]
MAX_TILE = 4096
MEDIA_TYPES = {"png": "image/png", "webp": "image/webp"}
_AXES = {"z": 0, "y": 1, "x": 2}


def _axis(axis: str) -> int:
    try:
        return _AXES[axis]
    except (KeyError, TypeError):
        raise ValueError(f"axis must be 'z', 'y' or 'x', got {axis!r}") from None


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an int, got {value!r}")
    return int(value)


def plane_shape(shape: Sequence[int], *, axis: str) -> tuple[int, int]:
    """(rows, cols) of a plane perpendicular to ``axis`` of a ZYX ``shape``."""
    z, y, x = (int(s) for s in shape)
    return {0: (y, x), 1: (z, x), 2: (z, y)}[_axis(axis)]


def tile_grid(shape: Sequence[int], *, axis: str, tile: int = 256) -> tuple[int, int]:
    """Number of tiles (rows, cols) covering a plane perpendicular to ``axis``."""
    rows, cols = plane_shape(shape, axis=axis)
    return -(-rows // tile), -(-cols // tile)


def read_tile(
    arr_level: Any, *, axis: str, index: int, ty: int, tx: int, tile: int = 256
) -> np.ndarray:
    """Read one tile of a ZYX array-like as a 2D array (rows, cols), same dtype.

    Raises
    ------
    ValueError
        Bad axis, non-int coordinates, tile size outside 1..4096.
    IndexError
        ``index``, ``ty`` or ``tx`` outside the level.
    """
    ax = _axis(axis)
    index, ty, tx, tile = (_int(v, n) for v, n in ((index, "index"), (ty, "ty"), (tx, "tx"), (tile, "tile")))
    if not 1 <= tile <= MAX_TILE:
        raise ValueError(f"tile must be in 1..{MAX_TILE}, got {tile}")
    shape = tuple(int(s) for s in arr_level.shape)
    if len(shape) != 3:
        raise ValueError(f"expected a ZYX array, got shape {shape}")
    if not 0 <= index < shape[ax]:
        raise IndexError(f"{axis}={index} is outside the level (size {shape[ax]})")
    rows, cols = plane_shape(shape, axis=axis)
    r0, c0 = ty * tile, tx * tile
    if ty < 0 or tx < 0 or r0 >= rows or c0 >= cols:
        raise IndexError(f"tile ({ty}, {tx}) is outside a {rows}x{cols} plane")
    rs, cs = slice(r0, min(rows, r0 + tile)), slice(c0, min(cols, c0 + tile))
    key = ((index, rs, cs), (rs, index, cs), (rs, cs, index))[ax]
    return np.asarray(arr_level[key])


@lru_cache(maxsize=64)
def _lut(dtype: str, lo: float, hi: float) -> np.ndarray:
    n = 256 if dtype == "uint8" else 65536
    values = np.arange(n, dtype=np.float64)
    return np.clip(np.rint((values - lo) * (255.0 / (hi - lo))), 0, 255).astype(np.uint8)


def _window_to_uint8(plane: np.ndarray, window: tuple[float, float] | None) -> np.ndarray:
    if window is None:
        if plane.dtype == np.uint8:
            return plane
        if plane.dtype == np.uint16:
            window = (0.0, 65535.0)
        else:
            raise ValueError(f"a window is required for {plane.dtype} tiles")
    try:
        lo, hi = float(window[0]), float(window[1])
    except (TypeError, ValueError, IndexError):
        raise ValueError(f"window must be (low, high) numbers, got {window!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
        raise ValueError(f"window must be finite with high > low, got {window!r}")
    if plane.dtype in (np.uint8, np.uint16):
        return _lut(str(plane.dtype), lo, hi)[plane]
    scaled = (plane.astype(np.float32) - lo) * np.float32(255.0 / (hi - lo))
    return np.clip(np.rint(np.nan_to_num(scaled, nan=0.0)), 0, 255).astype(np.uint8)


def _encode(img: np.ndarray, fmt: str, *, lossless: bool, quality: int = 90) -> bytes:
    if fmt == "png":
        ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    elif fmt == "webp":
        ok, buf = cv2.imencode(".webp", img, [cv2.IMWRITE_WEBP_QUALITY, 101 if lossless else int(quality)])
    else:
        raise ValueError(f"fmt must be 'png' or 'webp', got {fmt!r}")
    if not ok:  # pragma: no cover - OpenCV only fails on invalid images
        raise ValueError(f"could not encode a {img.shape} tile as {fmt}")
    return buf.tobytes()


def render_image_tile(
    arr_level: Any,
    *,
    axis: str,
    index: int,
    ty: int,
    tx: int,
    tile: int = 256,
    window: tuple[float, float] | None = None,
    fmt: str = "png",
    quality: int = 90,
) -> bytes:
    """Encode one grayscale tile of an intensity level.

    Parameters
    ----------
    arr_level : array-like, shape (Z, Y, X)
        One pyramid level (zarr array or numpy), uint8/uint16 (or float).
    axis, index, ty, tx, tile
        Plane and tile, see the module docstring.
    window : (low, high), optional
        Stored values mapped linearly to 0..255 and clipped. Default: identity for
        uint8, the full range for uint16; required for float data.
    fmt : {"png", "webp"}
    quality : int
        WebP quality (1..100).

    Returns
    -------
    bytes
        8-bit grayscale image, ``min(tile, rows - ty*tile)`` x ``min(tile, cols - tx*tile)``.
    """
    plane = read_tile(arr_level, axis=axis, index=index, ty=ty, tx=tx, tile=tile)
    return _encode(np.ascontiguousarray(_window_to_uint8(plane, window)), fmt, lossless=False, quality=quality)


def instance_colors(ids: np.ndarray) -> np.ndarray:
    """Deterministic RGB colours for integer ids (see module docstring).

    Parameters
    ----------
    ids : ndarray of int

    Returns
    -------
    ndarray, shape ``ids.shape + (3,)``, uint8, each channel in 64..255.
    """
    h = (np.asarray(ids).astype(np.int64) & 0xFFFFFFFF).astype(np.uint64)
    mask = np.uint64(0xFFFFFFFF)
    h ^= h >> np.uint64(16)
    h = (h * np.uint64(0x7FEB352D)) & mask
    h ^= h >> np.uint64(15)
    h = (h * np.uint64(0x846CA68B)) & mask
    h ^= h >> np.uint64(16)
    channels = [(h >> np.uint64(s)) & np.uint64(255) for s in (0, 8, 16)]
    return np.stack([(64 + c % np.uint64(192)).astype(np.uint8) for c in channels], axis=-1)


def instance_color(label: int) -> tuple[int, int, int, int]:
    """Opaque RGBA colour for one instance id (e.g. a cell), stable across runs."""
    r, g, b = (int(v) for v in instance_colors(np.array([int(label)]))[0])
    return r, g, b, 255


def render_label_tile(
    arr_level: Any,
    *,
    axis: str,
    index: int,
    ty: int,
    tx: int,
    tile: int = 256,
    colors: Mapping[int, Sequence[int]] | None = None,
    opacity: float = 1.0,
    fmt: str = "png",
) -> bytes:
    """Encode one RGBA tile of a label level.

    Parameters
    ----------
    arr_level : array-like, shape (Z, Y, X), integer labels
    colors : dict[int, (r, g, b[, a])], optional
        Class colours (0..255). Ids missing from it get :func:`instance_color`; id 0
        (unlabeled) is always fully transparent.
    opacity : float
        Multiplies every alpha, 0..1.
    fmt : {"png", "webp"}
        WebP is lossless here.

    Returns
    -------
    bytes
        RGBA image of the tile's size.
    """
    opacity = float(opacity)
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in [0, 1], got {opacity!r}")
    plane = read_tile(arr_level, axis=axis, index=index, ty=ty, tx=tx, tile=tile)
    if plane.dtype.kind not in "ui":
        raise ValueError(f"label tiles need integer labels, got {plane.dtype}")
    uniq, inverse = np.unique(plane, return_inverse=True)
    palette = np.zeros((len(uniq), 4), dtype=np.uint8)  # BGRA for OpenCV
    if len(uniq):
        rgb = instance_colors(uniq)
        palette[:, 0], palette[:, 1], palette[:, 2], palette[:, 3] = rgb[:, 2], rgb[:, 1], rgb[:, 0], 255
        for i, value in enumerate(uniq.tolist()):
            if colors is not None and value in colors:
                c = [int(v) for v in colors[value]]
                if len(c) not in (3, 4) or any(not 0 <= v <= 255 for v in c):
                    raise ValueError(f"colour of label {value} must be 3 or 4 ints in 0..255, got {colors[value]!r}")
                palette[i] = (c[2], c[1], c[0], c[3] if len(c) == 4 else 255)
        palette[uniq == 0] = 0
    if opacity < 1.0:
        palette[:, 3] = np.rint(palette[:, 3] * opacity).astype(np.uint8)
    bgra = palette[inverse.reshape(plane.shape)]
    return _encode(np.ascontiguousarray(bgra), fmt, lossless=True)


def tile_etag(*parts: object) -> str:
    """Strong, quoted ETag for a tile from everything that determines its bytes.

    Pass e.g. the volume id, the layer's content version (bumped on every write),
    axis, index, level, ty, tx, tile, window, opacity and format.

    Examples
    --------
    >>> tile_etag(7, "v3", "z", 10, 0, 1, 2, (0, 255), "png").startswith('"')
    True
    """
    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        h.update(repr(p).encode())
        h.update(b"\x1f")
    return f'"{h.hexdigest()}"'
