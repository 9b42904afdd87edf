"""Segment as block tasks: the plan of a volume, one block's run, and the finish.

A segment job's volume is cut by :func:`segmentation.core.blocks.block_plan` into blocks
whose cores are whole chunks of the image, of the "prediction" layer's level 0 and of the
prediction lattice (:class:`segmentation.core.blockwise.Lattice`). A block
(:func:`segment_block_run`) reads its core plus context, predicts it, and writes

* its labels straight into the prediction layer's level-0 chunks, and the coarser levels
  whose chunks it covers whole (two blocks never share a chunk file, so no lock is needed);
* ``MEDIA_ROOT/segment/job-<id>/block-<index>.npz``: its tile uncertainty sums and voxel
  counts per label value, written atomically last: the file says the block is done.

Who runs a block: the job's task and its helper tasks each claim blocks nobody has claimed
(:func:`block_claim`, an exclusive file beside the result, touched while the block runs) and run
them (:func:`segment_blocks_work`). Re-running a block rewrites the same chunks with the same
bytes and the same file, so the block of a worker that died is taken over once its claim is
stale, and run again. :func:`segment_finish` builds the pyramid levels no
block covered whole, adds up the blocks' tile sums in block order and ranks the regions to
label next: the ranking is a sort of kept sums, not a second pass. Every step takes ids and
paths, not open objects, so a worker on another machine that mounts the same MEDIA_ROOT and
database can run any block.
"""
from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings

from annotations.imaging import omezarr
from annotations.layer_names import LayerName
from emportal.jobs.claims import UnitClaims, worker_name
from segmentation.core.active import Suggestion, TileSums, rank_tiles, tile_grid
from segmentation.core.blocks import Block, BlockPlan, block_plan
from segmentation.core.blockwise import Lattice, segment_block
from segmentation.core.inference import PredictStats
from segmentation.core.modelfile import TrainedModel

#: Core size of a block (Z, Y, X): whole chunks of the image (16 x 256 x 256), of the label
#: levels 0-2 (4 x 256 x 256 at 1, 2 and 4 times the pixel size) and of the 512-px lattice.
SEGMENT_BLOCK = (16, 1024, 1024)
LATTICE = Lattice(cell=512, context=32)

__all__ = ["LATTICE", "SEGMENT_BLOCK", "BlockDone", "block_claim", "block_done_path", "blocks_done",
           "block_result", "block_results", "segment_block_run", "segment_blocks_work",
           "segment_cleanup", "segment_dir", "segment_leftovers_remove", "segment_finish", "segment_plan", "segment_threads"]


def segment_threads() -> int:
    """Torch threads of a block: the same on every worker, since the last bit of a float
    depends on it (segmentation/core/blockwise.py); settings.SEGMENT_THREADS, default 1."""
    value = getattr(settings, "SEGMENT_THREADS", 1)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"SEGMENT_THREADS must be a positive integer, got {value!r}")
    return value


def _claims(job_id: int) -> UnitClaims:
    """A job's blocks as units claimed through files beside their results (emportal.jobs.claims).

    A claim untouched for settings.SEGMENT_BLOCK_STALE_SECONDS (default 120; claims are touched
    every few seconds while a block runs) belongs to a worker that died and is taken over.
    """
    return UnitClaims(segment_dir(job_id), "block", ".npz",
                      stale_seconds=float(getattr(settings, "SEGMENT_BLOCK_STALE_SECONDS", 120)))


def block_claim(job_id: int, index: int) -> bool:
    """Claim a block of a job for this process: True when it is ours to run.

    A block that is done is never claimed; a claim gone stale is taken over. Two workers taking
    over the same stale claim both run the block, which is harmless: a block is idempotent.
    """
    return _claims(job_id).claim(index)


def segment_blocks_work(job_id: int, dest: Path, plan: BlockPlan, model: TrainedModel, *, tile: int, tta: bool,
                        device: Any, should_stop: Callable[[], bool],
                        on_block: Callable[[BlockDone], None] | None = None) -> int:
    """Run every block of the plan that nobody else has claimed, in plan order; returns how many.

    The parent task of a segment job and its helper tasks on other workers all run this, so
    the blocks spread over whoever is free. ``should_stop()`` is asked before each block
    (cancel, or the job is no longer running).
    """
    blocks = {block.index: block for block in plan}

    def work(index: int) -> None:
        done = segment_block_run(job_id, dest, plan, blocks[index], model, tile=tile, tta=tta, device=device)
        if on_block is not None:
            on_block(done)

    return _claims(job_id).run(list(blocks), work, should_stop=should_stop)


def segment_plan(dest: Path, shape: tuple[int, int, int], *, block: tuple[int, int, int] | None = None,
                 lattice: Lattice = LATTICE) -> BlockPlan:
    """The blocks of the volume stored at ``dest`` (its prediction layer must exist): cores in
    whole chunks of the layer's level 0 and whole lattice cells (SEGMENT_BLOCK by default,
    which also reads whole image chunks)."""
    label_chunks = tuple(int(c) for c in omezarr.open_label_level(dest, LayerName.PREDICTION, 0).chunks)
    return block_plan(shape, block=block or SEGMENT_BLOCK, align=[label_chunks, (1, lattice.cell, lattice.cell)],
                      halo=(0, lattice.context, lattice.context))


def segment_dir(job_id: int) -> Path:
    """Where a segment job's blocks leave their results (shared by every worker)."""
    return Path(settings.MEDIA_ROOT) / "segment" / f"job-{int(job_id)}"


def block_done_path(job_id: int, index: int) -> Path:
    return _claims(job_id).done_path(index)


def blocks_done(job_id: int, total: int) -> list[int]:
    """Indexes of the blocks of a job that finished (their result file exists)."""
    return _claims(job_id).done(total)  # one listing, not a stat per block


def _whole_levels(box: Any, shape: tuple[int, int, int], level_chunks: list[tuple[int, ...]]) -> int:
    """The coarsest label level whose chunks the block's core covers whole (0: none beyond level 0)."""
    whole = 0
    for level in range(1, len(level_chunks)):
        f = 2**level
        ok = True
        for (lo, hi), size, chunk in zip(box[1:], shape[1:], level_chunks[level][1:]):
            span = chunk * f
            if lo % span or (hi % span and hi != size):
                ok = False
        if not ok:
            break
        whole = level
    return whole


def _pyramid(dest: Path, name: str, box: Any, levels: range) -> None:
    """Levels ``levels`` of label layer ``name`` over ``box`` (level-0 voxels), each the 2x2
    mode of the level below (omezarr.update_label_pyramid, over chosen levels only)."""
    regions = omezarr.label_regions(dest, name)
    (z0, z1), (y0, y1), (x0, x1) = box
    for level in levels:
        prev, arr = regions[level - 1], regions[level]
        f = 2**level
        ly0, ly1 = y0 // f, min(arr.shape[1], -(-y1 // f))
        lx0, lx1 = x0 // f, min(arr.shape[2], -(-x1 // f))
        for s in range(z0, z1, 16):  # a few slices at a time: memory stays a slab of the block
            zs = (s, min(s + 16, z1))
            src = prev.read((zs, (2 * ly0, min(prev.shape[1], 2 * ly1)), (2 * lx0, min(prev.shape[2], 2 * lx1))))
            arr.write_many([((zs, (ly0, ly1), (lx0, lx1)), omezarr.downsample_mode(src))])


@dataclass(frozen=True)
class BlockDone:
    """What a finished block left: its index, voxel counts per label value, tile sums, seconds per stage."""

    index: int
    class_voxels: dict[int, int]
    tiles: TileSums
    stats: dict[str, float]
    worker: str = ""


def _save(job_id: int, done: BlockDone) -> None:
    # No mkdir: the job's task made the folder and removes it when the job ends, so a helper
    # still finishing a block of an ended job fails here instead of leaving files behind.
    values = np.array(sorted(done.class_voxels), np.int64)

    def write(handle: Any) -> None:
        np.savez(handle, index=done.index, values=values,
                 counts=np.array([done.class_voxels[int(v)] for v in values], np.int64),
                 origin=np.array([done.tiles.z0, done.tiles.ty0, done.tiles.tx0], np.int64),
                 sums=done.tiles.sums, tile_counts=done.tiles.counts, areas=done.tiles.areas,
                 stats=np.array([done.stats.get(k, 0.0) for k in _STATS], np.float64), worker=np.array(done.worker))

    _claims(job_id).done_write(done.index, write)


_STATS = ("load_s", "forward_s", "postprocess_s", "write_s", "voxels")


def _load(path: Path) -> BlockDone:
    with np.load(path) as f:
        z0, ty0, tx0 = (int(v) for v in f["origin"])
        return BlockDone(index=int(f["index"]), class_voxels={int(v): int(n) for v, n in zip(f["values"], f["counts"])},
                         tiles=TileSums(z0, ty0, tx0, f["sums"], f["tile_counts"], f["areas"]),
                         stats=dict(zip(_STATS, (float(v) for v in f["stats"]))), worker=str(f["worker"]))


def segment_block_run(job_id: int, dest: Path, plan: BlockPlan, block: Block, model: TrainedModel, *,
                      tile: int, tta: bool, device: Any, lattice: Lattice = LATTICE) -> BlockDone:
    """Segment one block of a job: its labels into the prediction layer, its scores into its file.

    Idempotent: the same block writes the same chunks and the same file again.
    """
    import torch

    stats = PredictStats()
    image = omezarr.open_level(dest, 0)
    manual = omezarr.open_label_level(dest, LayerName.MANUAL, 0)
    out = omezarr.open_label_level(dest, LayerName.PREDICTION, 0, mode="r+")
    threads = torch.get_num_threads()
    torch.set_num_threads(segment_threads())
    try:
        result = segment_block(model, image, block.core, lattice=lattice, tta=tta, device=device, labels=manual,
                               tile=tile, dtype=np.dtype(out.dtype), stats=stats)
    finally:  # the worker's next job (a retrain) keeps its own thread count
        torch.set_num_threads(threads)
    t = time.perf_counter()
    out[block.core] = result.labels
    label_chunks = [tuple(int(c) for c in omezarr.open_label_level(dest, LayerName.PREDICTION, level).chunks)
                    for level in range(len(omezarr.label_regions(dest, LayerName.PREDICTION)))]
    _pyramid(dest, LayerName.PREDICTION, block.box, range(1, _whole_levels(block.box, plan.shape, label_chunks) + 1))
    stats.write_s += time.perf_counter() - t
    assert result.tiles is not None
    done = BlockDone(index=block.index, class_voxels=result.class_voxels, tiles=result.tiles,
                     stats={k: float(getattr(stats, k)) for k in _STATS}, worker=worker_name())
    _save(job_id, done)
    return done


def segment_finish(job_id: int, dest: Path, plan: BlockPlan, *, tile: int, k: int, heads: int,
                   z_spacing: float) -> tuple[list[Suggestion], dict[int, int], dict[str, float]]:
    """After every block: the pyramid levels no block covered whole, and the ranking.

    Returns the suggestions (best first), voxels per label value and summed stage seconds.
    Raises ValueError when a block has not finished.
    """
    missing = sorted(set(range(len(plan))) - set(blocks_done(job_id, len(plan))))
    if missing:
        raise ValueError(f"{len(missing)} of {len(plan)} blocks have not finished (first: {missing[0]})")
    label_chunks = [tuple(int(c) for c in omezarr.open_label_level(dest, LayerName.PREDICTION, level).chunks)
                    for level in range(len(omezarr.label_regions(dest, LayerName.PREDICTION)))]
    done_levels = min(_whole_levels(b.box, plan.shape, label_chunks) for b in plan)
    if done_levels + 1 < len(label_chunks):
        Z, Y, X = plan.shape
        _pyramid(dest, LayerName.PREDICTION, ((0, Z), (0, Y), (0, X)), range(done_levels + 1, len(label_chunks)))
    parts = [_load(block_done_path(job_id, b.index)) for b in plan]  # in block order: the same sums every run
    counts: dict[int, int] = {}
    stats: dict[str, float] = dict.fromkeys(_STATS, 0.0)
    for p in parts:
        for value, n in p.class_voxels.items():
            counts[value] = counts.get(value, 0) + n
        for key, v in p.stats.items():
            stats[key] += v
    scores, frac = tile_grid([p.tiles for p in parts], shape=plan.shape, tile=tile, heads=heads)
    suggestions = rank_tiles(scores.mean(-1), k=k, tile=tile, shape=plan.shape, labeled_fraction=frac,
                             z_spacing=z_spacing)
    return suggestions, counts, stats


def block_results(job_id: int, plan: BlockPlan) -> list[BlockDone]:
    """The results the finished blocks of a job left, in block order."""
    return [_load(block_done_path(job_id, i)) for i in blocks_done(job_id, len(plan))]


def block_result(job_id: int, index: int) -> BlockDone:
    """The result one finished block left."""
    return _load(block_done_path(job_id, index))


def segment_cleanup(job_id: int) -> None:
    """Remove a job's block files (after its run is recorded, or when it failed or was cancelled)."""
    shutil.rmtree(segment_dir(job_id), ignore_errors=True)


def segment_leftovers_remove(job: Any) -> None:
    """The reaper's cleanup of a segment job whose worker died: its block files."""
    segment_cleanup(int(job.pk))
