"""Segment as block tasks: voxels/s with 1 and 2 worker processes, against the bare forward.

A generated FIB-SEM-like volume (benchmarks/bigvolume.py, OME-Zarr) is segmented block by
block with the code a segment job's block runs (:func:`segmentation.modelloop.blocks.segment_block_run`:
read block + context, normalise, forward on the lattice, clean-up, write level 0 and the
whole-chunk pyramid levels, keep the tile scores), by 1 and then 2 worker processes taking
blocks from one queue, each with one torch thread (as the app's block workers). Figures, all
measured in this run:

* ``speedup_2_workers``: voxels/s with 2 workers over voxels/s with 1 (aim >= 1.8);
* ``vs_bare_forward``: the bare network forward on a block's lattice windows (inputs built
  beforehand, 1 thread) over the whole block run just after it in the same process, summed over
  the blocks of the 1-worker run (aim >= 0.8); pairing each block with its own baseline keeps
  the shared machine's swings out of the ratio;
* ``ranking_fraction``: the cost of the regions to label next (entropy and tile sums inside
  each block, timed on every block, plus the finish: coarse pyramid levels, adding up and
  ranking) over the 1-worker block time (aim <= 0.10); the ranking was a second whole-volume
  pass before.

The 2-worker run is checked to write the same bytes as the 1-worker run. The machine's load
(``uptime``) is printed and stored beside the figures; RSS is the peak of the benchmark and of
its worker processes. The model is an untrained ResUNet of the default width and depth with
5 input slices (the FIB-SEM default): speed does not depend on the weights.

Usage::

    .venv/bin/python benchmarks/segment_blocks.py --shape 16 1024 1024 --block 16 512 512 \\
        --out benchmarks/results/segment_blocks.json
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

HEADS = ("nucleus", "nucleolus", "mitochondrion", "endosome", "lysosome")


def _settings(media: Path) -> None:
    from django.conf import settings

    if not settings.configured:
        settings.configure(MEDIA_ROOT=str(media), SEGMENT_THREADS=1)


def _model_file(path: Path) -> None:
    from segmentation.core.classes import ClassSpec
    from segmentation.core.modelfile import Normalization, TrainedModel, save_model
    from segmentation.core.resunet import ResUNet, ResUNetConfig

    torch.manual_seed(0)
    config = ResUNetConfig(in_slices=5, out_channels=len(HEADS), base_width=16, depth=4)
    net = ResUNet(config).eval()
    values = {"background": 1, **{h: i + 2 for i, h in enumerate(HEADS)}}
    model = TrainedModel(net, config, ClassSpec.build(values, {"nucleolus": "nucleus"}), Normalization(lo=0.0, hi=255.0),
                         meta={"z_blend": {"mitochondrion": 0.2}})
    save_model(path, model)


def _worker(job_id: int, dest: str, block: list[int], model_path: str, media: str, tile: int,
            todo: Any, done: Any, paired: bool) -> None:
    _settings(Path(media))
    from segmentation.core.modelfile import load_model
    from segmentation.modelloop.blocks import segment_block_run, segment_dir, segment_plan

    torch.set_num_threads(1)
    segment_dir(job_id).mkdir(parents=True, exist_ok=True)  # the job makes it; a missing one means cancelled
    model = load_model(model_path, device="cpu")
    plan = segment_plan(Path(dest), _shape(Path(dest)), block=(block[0], block[1], block[2]))
    done.put(("ready", 0.0, None))
    while True:
        index = todo.get()
        if index is None:
            break
        bare = _bare_block(model, Path(dest), plan[index]) if paired else {}
        t = time.perf_counter()
        result = segment_block_run(job_id, Path(dest), plan, plan[index], model, tile=tile, tta=False, device="cpu")
        done.put((index, time.perf_counter() - t, {**result.stats, **bare}))
    done.put(("rss", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, None))


def _shape(dest: Path) -> tuple[int, int, int]:
    from annotations.imaging import omezarr

    return tuple(int(s) for s in omezarr.open_level(dest, 0).shape)  # type: ignore[return-value]


def _run(workers: int, job_id: int, dest: Path, args: argparse.Namespace, model_path: Path,
         media: Path) -> dict[str, Any]:
    """All blocks by `workers` processes; wall seconds from the first block queued to the last done."""
    from segmentation.modelloop.blocks import segment_plan

    plan = segment_plan(dest, _shape(dest), block=tuple(args.block))
    ctx = mp.get_context("spawn")
    todo, done = ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(job_id, str(dest), list(args.block), str(model_path), str(media),
                                              args.tile, todo, done, workers == 1)) for _ in range(workers)]
    for p in procs:
        p.start()
    for _ in procs:  # the clock starts once every worker has loaded torch and the model
        assert done.get()[0] == "ready"
    t0 = time.perf_counter()
    for b in plan:
        todo.put(b.index)
    for _ in procs:
        todo.put(None)
    per_block: dict[int, float] = {}
    stats: dict[str, float] = {}
    rss: list[float] = []
    while len(per_block) < len(plan) or len(rss) < workers:
        index, seconds, block_stats = done.get()
        if index == "rss":
            rss.append(seconds)
            continue
        per_block[index] = seconds
        for k, v in block_stats.items():
            stats[k] = stats.get(k, 0.0) + v
    wall = time.perf_counter() - t0
    for p in procs:
        p.join()
    voxels = sum(b.voxels for b in plan)
    # With one worker the clock also ran the paired bare forwards: its time is its blocks' time.
    busy = sum(per_block.values()) if workers == 1 else wall
    return {"workers": workers, "blocks": len(plan), "voxels": voxels, "wall_s": round(wall, 3),
            "voxels_per_s": round(voxels / busy, 1), "block_s": [round(per_block[i], 3) for i in sorted(per_block)],
            "stages_s": {k: round(v, 3) for k, v in stats.items()}, "worker_rss_mib": [round(r, 1) for r in rss]}


def _bare_block(model: Any, dest: Path, block: Any) -> dict[str, float]:
    """Just before the block runs, in the same process: the network alone on the block's lattice
    windows (inputs built beforehand, one thread), and the in-pass scores on its probabilities."""
    from annotations.imaging import omezarr
    from segmentation.core.active import binary_entropy, block_tile_sums
    from segmentation.core.blockwise import _cell_window, _forward_flips, block_probabilities
    from segmentation.core.inference import downsample
    from segmentation.modelloop.blocks import LATTICE

    image = omezarr.open_level(dest, 0)
    Z, Y, X = image.shape
    zs, ys, xs = block.core
    z0, z1 = max(zs.start - 1, 0), min(zs.stop + 1, Z)  # the model blends one slice each side
    forward_s = 0.0
    for cy in range(ys.start, ys.stop, LATTICE.cell):
        for cx in range(xs.start, xs.stop, LATTICE.cell):
            cys, cxs = slice(cy, min(cy + LATTICE.cell, Y)), slice(cx, min(cx + LATTICE.cell, X))
            data = downsample(_cell_window(model, image, slice(z0, z1), cys, cxs, LATTICE.context), model.scale)
            stack = np.lib.stride_tricks.sliding_window_view(data, model.config.in_slices, axis=0)
            windows = np.array(np.moveaxis(stack, -1, 1), order="C")
            t = time.perf_counter()
            _forward_flips(model, windows, device=torch.device("cpu"), tta=False, batch=4, disagreement=False)
            forward_s += time.perf_counter() - t
    probs, _ = block_probabilities(model, image, block.core, lattice=LATTICE, device="cpu")
    t = time.perf_counter()
    block_tile_sums(binary_entropy(probs), block.core, tile=256)
    return {"bare_forward_s": forward_s, "in_pass_scores_s": time.perf_counter() - t}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shape", type=int, nargs=3, default=[16, 1024, 1024], metavar=("Z", "Y", "X"))
    p.add_argument("--block", type=int, nargs=3, default=[16, 512, 512], metavar=("BZ", "BY", "BX"))
    p.add_argument("--tile", type=int, default=256)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "segment_blocks.json")
    args = p.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="segment-blocks-"))
    media = scratch / "media"
    _settings(media)
    from annotations.imaging import omezarr
    from segmentation.modelloop.blocks import segment_finish, segment_plan

    dest = scratch / "big.ome.zarr"
    t = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bigvolume.py"), "--shape", *map(str, args.shape),
                    "--format", "ome-zarr", "--no-labels", "--out", str(dest)], check=True, stdout=subprocess.DEVNULL)
    print(f"generated {tuple(args.shape)} in {time.perf_counter() - t:.1f} s")
    for name in ("manual", "prediction"):
        omezarr.create_label_layer(dest, name, dtype="uint16")
    model_path = scratch / "model.pt"
    _model_file(model_path)
    load = {"before": os.getloadavg()}
    one = _run(1, 1, dest, args, model_path, media)
    first = np.asarray(omezarr.open_label_level(dest, "prediction", 0)[:])
    load["after_1"] = os.getloadavg()
    two = _run(2, 2, dest, args, model_path, media)
    same = bool(np.array_equal(first, np.asarray(omezarr.open_label_level(dest, "prediction", 0)[:])))
    load["after_2"] = os.getloadavg()
    bare_s, scores_s = one["stages_s"]["bare_forward_s"], one["stages_s"]["in_pass_scores_s"]
    block_s = sum(one["block_s"])
    bare = {"forward_s": round(bare_s, 3), "voxels_per_s": round(one["voxels"] / bare_s, 1),
            "in_pass_scores_s": round(scores_s, 3), "paired_block_s": round(block_s, 3)}
    plan = segment_plan(dest, _shape(dest), block=tuple(args.block))
    t = time.perf_counter()
    segment_finish(2, dest, plan, tile=args.tile, k=6, heads=len(HEADS), z_spacing=1.0)
    finish_s = time.perf_counter() - t
    ranking_s = bare["in_pass_scores_s"] + finish_s
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    report = {
        "shape": args.shape, "block": args.block, "tile": args.tile, "one_worker": one, "two_workers": two,
        "bare_forward": bare, "finish_s": round(finish_s, 3), "two_workers_wrote_the_same_bytes": same,
        "speedup_2_workers": round(two["voxels_per_s"] / one["voxels_per_s"], 3),
        "vs_bare_forward": round(bare_s / block_s, 3),
        "ranking_fraction": round(ranking_s / block_s, 4),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "loadavg": load, "uptime": uptime, "cpus": os.cpu_count(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"load: {uptime}")
    print(f"1 worker : {one['voxels_per_s'] / 1e3:.1f} kvoxel/s ({one['wall_s']:.1f} s, {one['blocks']} blocks)")
    print(f"2 workers: {two['voxels_per_s'] / 1e3:.1f} kvoxel/s ({two['wall_s']:.1f} s)  speed-up "
          f"{report['speedup_2_workers']:.2f}x (aim >= 1.8); same bytes: {same}")
    print(f"bare forward: {bare['voxels_per_s'] / 1e3:.1f} kvoxel/s ({bare_s:.1f} s) against {block_s:.1f} s of the "
          f"same blocks run whole just after, block by block: {report['vs_bare_forward']:.2f} (aim >= 0.8)")
    print(f"ranking: {scores_s:.2f} s in the blocks + {finish_s:.2f} s finish = "
          f"{100 * report['ranking_fraction']:.1f} % of the 1-worker block time (aim <= 10 %)")
    print(f"peak RSS: benchmark {report['peak_rss_mib']:.0f} MiB, workers {one['worker_rss_mib']} / {two['worker_rss_mib']} MiB")
    print(f"wrote {args.out}")
    import shutil

    shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
