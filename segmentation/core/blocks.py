"""The block plan of a volume: the units of work of a distributed segment.

A volume of shape (Z, Y, X) is cut into blocks on a regular grid whose sizes are whole
multiples of every chunk grid given (the image's and the label layer's), so each block's
*core*, the region it writes, covers whole chunks and two blocks never write the same
chunk file. Each block reads its core grown by a *halo* (the context the network needs),
clipped to the volume. Blocks are numbered in raster order (Z, then Y, then X) and the plan
is a pure function of its arguments, so every worker that builds it agrees on block ids.

Examples
--------
>>> plan = block_plan((20, 600, 300), block=(16, 512, 256), align=[(16, 256, 256), (4, 256, 256)])
>>> len(plan), plan.blocks[1].core
(12, (slice(0, 16, None), slice(0, 512, None), slice(256, 300, None)))
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

__all__ = ["Block", "BlockPlan", "Box", "Region", "block_plan"]

Region = tuple[slice, slice, slice]
Box = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]


@dataclass(frozen=True)
class Block:
    """One unit of work: ``index`` in the plan, ``core`` (ZYX slices it writes) and
    ``outer`` (the core grown by the halo and clipped to the volume: what it reads)."""

    index: int
    core: Region
    outer: Region

    @property
    def box(self) -> Box:
        """The core as ((z0, z1), (y0, y1), (x0, x1)), half-open voxel ranges."""
        return tuple((s.start, s.stop) for s in self.core)  # type: ignore[return-value]

    @property
    def voxels(self) -> int:
        return math.prod(s.stop - s.start for s in self.core)


@dataclass(frozen=True)
class BlockPlan:
    """The blocks covering a volume of ``shape``, ``block`` voxels each (fewer at the far
    edges), with ``halo`` voxels of context on each side."""

    shape: tuple[int, int, int]
    block: tuple[int, int, int]
    halo: tuple[int, int, int]
    blocks: tuple[Block, ...]

    def __len__(self) -> int:
        return len(self.blocks)

    def __iter__(self) -> Iterator[Block]:
        return iter(self.blocks)

    def __getitem__(self, index: int) -> Block:
        if not 0 <= index < len(self.blocks):
            raise IndexError(f"block {index} is not in this plan of {len(self.blocks)} blocks")
        return self.blocks[index]


def _positive3(name: str, value: Sequence[int], *, zero_ok: bool = False) -> tuple[int, int, int]:
    values = tuple(value)
    if len(values) != 3 or any(isinstance(v, bool) or int(v) != v or v < (0 if zero_ok else 1) for v in values):
        kind = "non-negative" if zero_ok else "positive"
        raise ValueError(f"{name} must be three {kind} integers (Z, Y, X), got {tuple(value)}")
    return int(values[0]), int(values[1]), int(values[2])


def block_plan(shape: Sequence[int], *, block: Sequence[int], align: Sequence[Sequence[int]] = (),
               halo: Sequence[int] = (0, 0, 0)) -> BlockPlan:
    """Cut a volume into blocks whose cores are whole chunks of every grid in ``align``.

    Parameters
    ----------
    shape : (Z, Y, X) of the volume, voxels.
    block : (bz, by, bx), the core size of every block but the last along each axis; each
        must be a multiple of the matching size of every grid in ``align`` where the volume
        holds more than one block along that axis.
    align : chunk grids (Z, Y, X) the cores must follow, e.g. the image chunks (16, 256, 256)
        and the label chunks (4, 256, 256); a lattice the predictor needs can be added too.
    halo : (hz, hy, hx) voxels of context read on each side of the core (clipped to the volume).

    Returns
    -------
    BlockPlan with blocks in raster order (Z slowest), ``blocks[i].index == i``.

    Raises
    ------
    ValueError
        A shape, block or halo that is not three integers of the right sign, or a block size
        that is not a multiple of a chunk grid (it would make two blocks share a chunk).
    """
    dims = _positive3("shape", shape)
    size = _positive3("block", block)
    grow = _positive3("halo", halo, zero_ok=True)
    for grid in align:
        chunk = _positive3("chunk grid", grid)
        for axis, (b, c, d) in enumerate(zip(size, chunk, dims)):
            if b % c and b < d:  # one block along an axis shares no chunk, whatever its size
                raise ValueError(f"block {size} is not a multiple of chunks {chunk} along {'ZYX'[axis]}: "
                                 f"two blocks would write the same chunk")
    blocks: list[Block] = []
    for z0 in range(0, dims[0], size[0]):
        for y0 in range(0, dims[1], size[1]):
            for x0 in range(0, dims[2], size[2]):
                starts = (z0, y0, x0)
                core = tuple(slice(s, min(s + b, d)) for s, b, d in zip(starts, size, dims))
                outer = tuple(slice(max(c.start - h, 0), min(c.stop + h, d)) for c, h, d in zip(core, grow, dims))
                blocks.append(Block(index=len(blocks), core=core, outer=outer))  # type: ignore[arg-type]
    return BlockPlan(shape=dims, block=size, halo=grow, blocks=tuple(blocks))
