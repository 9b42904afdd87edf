"""Pure geometry of strokes: from a gesture in a plane to a boolean mask over a 3D box.

No Django here. Planes follow the tile convention: axis "z" is the XY plane (rows y,
cols x), "y" the XZ plane (rows z, cols x), "x" the YZ plane (rows z, cols y). Boxes are
half-open level-0 voxel ranges ((z0, z1), (y0, y1), (x0, x1)).
"""
from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage

AXES = ("z", "y", "x")
MAX_POINTS = 20_000
MAX_RADIUS = 512.0

Box = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]


def plane_shape(shape: Sequence[int], axis: str) -> tuple[int, int]:
    """(rows, cols) of the plane perpendicular to `axis` in a ZYX `shape`."""
    z, y, x = shape
    return {"z": (y, x), "y": (z, x), "x": (z, y)}[axis]


def plane_box(axis: str, index: int, rows: tuple[int, int], cols: tuple[int, int]) -> Box:
    """The 3D box of a rectangle (rows, cols) in plane (axis, index)."""
    one = (index, index + 1)
    if axis == "z":
        return (one, rows, cols)
    if axis == "y":
        return (rows, one, cols)
    return (rows, cols, one)


def to_plane(block: np.ndarray, axis: str) -> np.ndarray:
    """View a 3D block that is one voxel thick along `axis` as its 2D plane."""
    return {"z": lambda b: b[0], "y": lambda b: b[:, 0], "x": lambda b: b[:, :, 0]}[axis](block)


def from_plane(plane: np.ndarray, axis: str) -> np.ndarray:
    """Inverse of :func:`to_plane`."""
    return {"z": lambda p: p[None], "y": lambda p: p[:, None], "x": lambda p: p[:, :, None]}[axis](plane)


@dataclass(frozen=True)
class Gesture:
    """What a user drew: a polyline (or polygon, or fill seed) in one plane."""

    axis: str
    index: int
    points: tuple[tuple[float, float], ...]
    radius: float
    mode: str

    def validate(self, shape: Sequence[int]) -> None:
        """Raise ValueError naming what is wrong with this gesture on a volume of `shape`."""
        if self.axis not in AXES:
            raise ValueError(f"axis {self.axis!r} is not one of z, y, x")
        extent = shape[AXES.index(self.axis)]
        if not 0 <= self.index < extent:
            raise ValueError(f"slice {self.axis}={self.index} is off the volume (0..{extent - 1})")
        if not self.points:
            raise ValueError("a stroke needs at least one point")
        if len(self.points) > MAX_POINTS:
            raise ValueError(f"{len(self.points)} points is more than the {MAX_POINTS} a stroke may have")
        if not (math.isfinite(self.radius) and 0.5 <= self.radius <= MAX_RADIUS):
            raise ValueError(f"radius {self.radius} is outside 0.5..{MAX_RADIUS} voxels")
        rows, cols = plane_shape(shape, self.axis)
        for r, c in self.points:
            if not (math.isfinite(r) and math.isfinite(c) and 0 <= r < rows and 0 <= c < cols):
                raise ValueError(f"point ({r}, {c}) is off the {rows} x {cols} plane")
        if self.mode == "polygon" and len(self.points) < 3:
            raise ValueError("a polygon needs at least three points")


def gesture_mask(gesture: Gesture, shape: Sequence[int]) -> tuple[tuple[int, int], tuple[int, int], np.ndarray]:
    """Rasterize a paint/erase/polygon gesture: (rows, cols) ranges and the bool mask in them.

    Paint and erase draw the polyline with round caps and joins of the given radius
    (OpenCV, 8-connected, so the same gesture always gives the same voxels).
    """
    rows_total, cols_total = plane_shape(shape, gesture.axis)
    pts = np.asarray(gesture.points, dtype=np.float64)
    pad = 0 if gesture.mode == "polygon" else int(math.ceil(gesture.radius))
    r0 = max(int(math.floor(pts[:, 0].min())) - pad, 0)
    r1 = min(int(math.ceil(pts[:, 0].max())) + pad + 1, rows_total)
    c0 = max(int(math.floor(pts[:, 1].min())) - pad, 0)
    c1 = min(int(math.ceil(pts[:, 1].max())) + pad + 1, cols_total)
    canvas = np.zeros((r1 - r0, c1 - c0), np.uint8)
    # OpenCV wants (x, y) = (col, row), integer, in the canvas frame.
    xy = np.round(pts[:, ::-1] - (c0, r0)).astype(np.int32)
    if gesture.mode == "polygon":
        cv2.fillPoly(canvas, [xy], 1, lineType=cv2.LINE_8)
    else:
        radius = max(int(round(gesture.radius)), 0)
        if len(xy) > 1:
            cv2.polylines(canvas, [xy], False, 1, thickness=2 * radius + 1, lineType=cv2.LINE_8)
        for x, y in xy:
            cv2.circle(canvas, (int(x), int(y)), radius, 1, thickness=-1, lineType=cv2.LINE_8)
    return (r0, r1), (c0, c1), canvas.astype(bool)


def fill_mask(plane: np.ndarray, seed: tuple[float, float]) -> tuple[tuple[int, int], tuple[int, int], np.ndarray]:
    """The 4-connected region of equal value under `seed` in `plane`, cropped to its box."""
    r, c = int(seed[0]), int(seed[1])
    region, _ = ndimage.label(plane == plane[r, c])
    mask = region == region[r, c]
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    return (r0, r1), (c0, c1), mask[r0:r1, c0:c1]


def box_intersection(a: Box, b: Box) -> Box | None:
    out = tuple((max(p[0], q[0]), min(p[1], q[1])) for p, q in zip(a, b))
    return None if any(lo >= hi for lo, hi in out) else out  # type: ignore[return-value]


def box_slices(box: Box, origin: Box | None = None) -> tuple[slice, ...]:
    """Slices selecting `box`, relative to the corner of `origin` (or absolute)."""
    base = [o[0] for o in origin] if origin else [0, 0, 0]
    return tuple(slice(lo - o, hi - o) for (lo, hi), o in zip(box, base))


def pack_mask(mask: np.ndarray) -> bytes:
    return zlib.compress(np.packbits(mask, axis=None).tobytes(), 6)


def unpack_mask(data: bytes | memoryview, shape: Sequence[int]) -> np.ndarray:
    bits = np.frombuffer(zlib.decompress(data), np.uint8)
    return np.unpackbits(bits, count=int(np.prod(shape))).reshape(shape).astype(bool)


def pack_array(array: np.ndarray) -> bytes:
    return zlib.compress(np.ascontiguousarray(array).tobytes(), 6)


def unpack_array(data: bytes | memoryview, shape: Sequence[int], dtype: np.dtype | str) -> np.ndarray:
    return np.frombuffer(zlib.decompress(data), dtype=dtype).reshape(shape).copy()
