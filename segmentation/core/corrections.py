"""What a correction round is judged by: the tiles of a target region an annotator may paint, and
how much of the error in the tiles just painted a fine-tune removed.

A correction loop applies a model to a region its labels never came from, paints the truth in a
few tiles there and fine-tunes. Painting a tile only helps the rest of the region if the model
first learns the tile itself: :func:`corrected_error` measures that on the painted tiles, and
:func:`region_tiles` keeps the candidate tiles inside the region.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["Box", "CorrectedError", "corrected_error", "region_tiles"]

#: A tile: slice z, rows y0:y1, columns x0:x1.
Box = tuple[int, int, int, int, int]


def region_tiles(region: np.ndarray, tile: int, *, labels: np.ndarray | None = None) -> list[Box]:
    """The tiles of the fixed ``tile`` grid (as :mod:`segmentation.core.active` lays it) lying wholly
    inside ``region`` (bool, ZYX) and, with ``labels`` (0 = unlabeled), holding no labeled voxel."""
    if tile < 1:
        raise ValueError(f"tile must be positive, got {tile}")
    Z, Y, X = region.shape
    out: list[Box] = []
    for z in np.nonzero(region.any(axis=(1, 2)))[0]:
        for y0 in range(0, Y, tile):
            for x0 in range(0, X, tile):
                box = (int(z), slice(y0, min(y0 + tile, Y)), slice(x0, min(x0 + tile, X)))
                if region[box].all() and (labels is None or not labels[box].any()):
                    out.append((int(z), y0, x0, box[1].stop, box[2].stop))
    return out


@dataclass(frozen=True)
class CorrectedError:
    """False positives and negatives of one class in painted tiles, before and after a fine-tune.

    fixed : share of the voxels wrong before that are right after.
    gone : share of the error removed net of new errors, ``1 - after / before`` (negative when
        the fine-tune made more errors there than it removed). Both NaN without any error before.
    """

    fp_before: int
    fn_before: int
    fp_after: int
    fn_after: int
    fixed: float
    gone: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def corrected_error(before: np.ndarray, after: np.ndarray, truth: np.ndarray, tiles: Sequence[Box], *,
                    value: int) -> CorrectedError:
    """The error on class ``value`` inside ``tiles`` of predictions ``before`` and ``after`` against ``truth``.

    before, after, truth : label volumes of one shape (class values); a voxel counts once however
    many tiles hold it.
    """
    inside = np.zeros(truth.shape, bool)
    for z, y0, x0, y1, x1 in tiles:
        inside[z, y0:y1, x0:x1] = True
    t, b, a = truth[inside] == value, before[inside] == value, after[inside] == value
    wrong_before = b != t
    n_before = int(wrong_before.sum())
    n_after = int((a != t).sum())
    nan = float("nan")
    return CorrectedError(
        fp_before=int((b & ~t).sum()), fn_before=int((~b & t).sum()), fp_after=int((a & ~t).sum()),
        fn_after=int((~a & t).sum()),
        fixed=float((a[wrong_before] == t[wrong_before]).mean()) if n_before else nan,
        gone=1.0 - n_after / n_before if n_before else nan)
