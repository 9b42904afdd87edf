"""Blockwise prediction speed against the bare model forward, plus peak memory.

Writes a synthetic uint8 volume to a zarr store (chunked, on disk), then in one run:

1. bare: the network's forward pass alone over the same voxels, tiled without overlap,
   input already normalised in memory, no blending, no reading or writing;
2. blockwise: ``predict_volume`` streaming zarr -> zarr (read, normalise, overlapping
   windows with cosine blending, post-process, write).

The figure is the ratio of voxels/s (blockwise / bare; the aim is >= 0.8). Peak RSS of
the process is reported next to the volume's size: the blockwise path holds one block
plus one window of margin, not the volume. The model is an untrained ResUNet of the
default size (speed does not depend on the weights).

Usage (from the project root)::

    .venv/bin/python benchmarks/inference.py [--shape 8 2048 2048] [--block 8 1024 1024]
        [--window 512] [--overlap 32] [--threads 1] [--device auto]

Writes benchmarks/results/inference-<time>.json.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import zarr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from segmentation.core.classes import ClassSpec  # noqa: E402
from segmentation.core.inference import PredictStats, predict_volume  # noqa: E402
from segmentation.core.modelfile import Normalization, TrainedModel, resolve_device  # noqa: E402
from segmentation.core.resunet import ResUNet, ResUNetConfig  # noqa: E402


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bare_forward(model: TrainedModel, image: np.ndarray, *, window: int, batch: int, device: torch.device) -> float:
    """Seconds for the forward pass over every voxel, non-overlapping windows, data in memory."""
    z, y, x = image.shape
    data = torch.from_numpy(model.normalization.apply(image))
    amp = device.type == "cuda"
    if amp:
        torch.cuda.synchronize()
    t = time.perf_counter()
    with torch.inference_mode():
        for y0 in range(0, y - window + 1, window):
            for x0 in range(0, x - window + 1, window):
                tiles = data[:, None, y0 : y0 + window, x0 : x0 + window]
                for i in range(0, z, batch):
                    with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
                        out = torch.sigmoid(model.net(tiles[i : i + batch].to(device)).float())
                    out.cpu()
    if amp:
        torch.cuda.synchronize()
    return time.perf_counter() - t


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shape", type=int, nargs=3, default=(8, 2048, 2048))
    p.add_argument("--block", type=int, nargs=3, default=(8, 1024, 1024))
    p.add_argument("--window", type=int, default=512)
    p.add_argument("--overlap", type=int, default=32)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--batch", type=int)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = resolve_device(args.device)
    batch = args.batch or (16 if dev.type == "cuda" else 4)
    z, y, x = args.shape
    if y % args.window or x % args.window:
        raise ValueError(f"shape {args.shape} must be a multiple of the window {args.window} in Y and X")
    torch.manual_seed(0)
    config = ResUNetConfig(out_channels=1, base_width=args.width)
    model = TrainedModel(ResUNet(config).to(dev).eval(), config, ClassSpec.build({"background": 1, "mitochondrion": 2}),
                         Normalization(lo=0.0, hi=255.0))
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        src = zarr.create_array(f"{tmp}/image.zarr", shape=(z, y, x), dtype=np.uint8, chunks=(1, 512, 512))
        for k in range(z):
            src[k] = rng.integers(0, 256, (y, x), dtype=np.uint8)
        dst = zarr.create_array(f"{tmp}/pred.zarr", shape=(z, y, x), dtype=np.uint8, chunks=(1, 512, 512))
        rss_before = _peak_rss_mib()
        stats = PredictStats()
        t = time.perf_counter()
        predict_volume(model, src, out=dst, block=tuple(args.block), window=args.window, overlap=args.overlap,
                       device=dev, stats=stats, progress_bar=True)
        blockwise_s = time.perf_counter() - t
        rss_blockwise = _peak_rss_mib()
        # the bare forward needs the volume in memory: load it after the blockwise run's RSS was read
        image = np.asarray(src[...])
        bare_s = bare_forward(model, image, window=args.window, batch=batch, device=dev)
    voxels = z * y * x
    result = {
        "shape": [z, y, x], "block": list(args.block), "window": args.window, "overlap": args.overlap,
        "device": str(dev), "threads": torch.get_num_threads(), "batch": batch, "width": args.width,
        "bare_voxels_per_s": voxels / bare_s, "blockwise_voxels_per_s": voxels / blockwise_s,
        "ratio": bare_s / blockwise_s,
        "stages_s": {"load": stats.load_s, "forward": stats.forward_s, "postprocess": stats.postprocess_s, "write": stats.write_s},
        "peak_rss_mib_after_blockwise": rss_blockwise, "peak_rss_mib_before": rss_before,
        "volume_mib_uint8": voxels / 2**20, "volume_probabilities_mib_float32": voxels * 4 / 2**20,
    }
    print(f"bare forward   {result['bare_voxels_per_s'] / 1e6:8.3f} Mvoxel/s")
    print(f"blockwise      {result['blockwise_voxels_per_s'] / 1e6:8.3f} Mvoxel/s   ratio {result['ratio']:.2f}")
    print("stages (s)     " + "  ".join(f"{k} {v:.1f}" for k, v in result["stages_s"].items()))
    print(f"peak RSS       {rss_blockwise:.0f} MiB after blockwise (volume {result['volume_mib_uint8']:.0f} MiB uint8, "
          f"{result['volume_probabilities_mib_float32']:.0f} MiB as float32 probabilities)")
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"inference-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
