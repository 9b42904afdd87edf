"""Stroke latency: websocket send -> ack with 1, 4 and 16 concurrent clients, beside the bare
zarr read-modify-write of the same patches measured in the same run.

Two loads: "back to back" (each client sends its next stroke the moment the last is
acknowledged: a saturation test whose latency is mostly queueing, read it as throughput)
and "paced" (each client paints ``--rate`` strokes per second with random gaps, as a fast
human does; the issue's aim, p95 < 25 ms at 16 clients, is read on this one).

Starts its own Redis (a fresh one, so no channel-layer group left over from an earlier run
gets the echoes) and Daphne on a scratch database, all on 127.0.0.1, bounded in count and
time. Writes benchmarks/results/strokes.json.

    .venv/bin/python benchmarks/strokes.py [--strokes 40] [--rate 2]   (strokes per client, paced rate)
        [--loads back_to_back,paced] [--clients 1,4,16]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks._django import django_scratch  # noqa: E402
from benchmarks._ports import free_port, redis_start, wait_port  # noqa: E402

SHAPE = (8, 1024, 1024)


def _stroke(rng: np.random.Generator, value: int) -> dict:
    z = int(rng.integers(0, SHAPE[0]))
    y, x = (int(v) for v in rng.integers(40, 984, 2))
    points = [[y + 3 * i, x + 2 * i] for i in range(10)]
    return {"uuid": str(uuid.uuid4()), "layer": "manual", "axis": "z", "index": z, "points": points,
            "radius": 5, "value": value, "mode": "paint"}


async def _client(url: str, cookie: str, strokes: list[dict], rate: float = 0.0,
                  seed: int = 0) -> list[tuple[float, float]]:
    """Send `strokes` over one socket; (send time, send -> ack latency) of each, in seconds."""
    import aiohttp

    gaps = np.random.default_rng(seed).exponential(1.0 / rate, len(strokes)) if rate else np.zeros(len(strokes))
    latencies = []
    async with aiohttp.ClientSession(headers={"Cookie": cookie, "Origin": "http://127.0.0.1"}) as session:
        async with session.ws_connect(url) as ws:
            await ws.receive_json()  # hello
            for stroke, gap in zip(strokes, gaps):
                await asyncio.sleep(float(gap))
                t0 = time.perf_counter()
                await ws.send_json({"type": "stroke", "stroke": stroke})
                while True:
                    text = await asyncio.wait_for(ws.receive_str(), timeout=30)
                    if stroke["uuid"] not in text:  # another client's echo: no need to decode it
                        continue
                    msg = json.loads(text)
                    if msg.get("type") == "ack" and msg.get("uuid") == stroke["uuid"]:
                        break
                    if msg.get("type") == "error":
                        raise RuntimeError(msg)
                latencies.append((t0, time.perf_counter() - t0))
    return latencies


def _stats(values: list[float]) -> dict[str, float]:
    arr = 1000 * np.asarray(values)
    return {"n": len(values), "p50_ms": float(np.percentile(arr, 50)), "p95_ms": float(np.percentile(arr, 95))}


def _p95_by_window(timed: list[tuple[float, float]], start: float, window: float = 30.0) -> list[float]:
    """p95 (ms) of the strokes sent in each `window` seconds of a load: a tail that grows with the run shows."""
    sent = np.asarray([t for t, _ in timed]) - start
    latency = 1000 * np.asarray([v for _, v in timed])
    bins = (sent // window).astype(int)
    return [round(float(np.percentile(latency[bins == b], 95)), 1) for b in range(bins.max() + 1) if (bins == b).any()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strokes", type=int, default=40, help="strokes per client")
    parser.add_argument("--rate", type=float, default=2.0, help="strokes per second per client in the paced load")
    parser.add_argument("--loads", default="back_to_back,paced", help="which loads, comma-separated")
    parser.add_argument("--clients", default="1,4,16", help="client counts, comma-separated")
    args = parser.parse_args()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        redis, os.environ["REDIS_URL"] = redis_start(Path(tempfile.mkdtemp(prefix="strokes-redis-")))  # before Django reads it
        procs.append(redis)
        scratch = django_scratch()
        import tifffile
        from django.conf import settings
        from django.test import Client

        from annotations import raster
        from annotations.imaging import omezarr
        from annotations.services import project_member_add, volume_import_local
        from annotations.storage import volume_zarr_path

        membership = project_member_add("Bench", "bench", "annotator")
        tifffile.imwrite(scratch / "v.tif", np.zeros(SHAPE, np.uint8), photometric="minisblack")
        volume = volume_import_local(membership.project, scratch / "v.tif", voxel_size_nm=(4, 4, 4)).volume
        value = membership.project.label_classes.get(name="nucleus").value
        client = Client()
        client.force_login(membership.user)
        cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"

        port = free_port()
        env = {**os.environ, "DATABASE_URL": settings.DATABASES["default"]["NAME"] and
               f"sqlite:///{settings.DATABASES['default']['NAME']}"}
        procs.append(subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                                       "emportal.asgi:application"], cwd=ROOT, env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_port(port, procs[-1], "daphne")
        url = f"ws://127.0.0.1:{port}/ws/volumes/{volume.pk}/"
        rng = np.random.default_rng(0)

        level0 = omezarr.open_label_level(volume_zarr_path(volume), "manual", 0, mode="r+")

        def bare(stroke: dict) -> float:
            gesture = raster.Gesture(axis="z", index=stroke["index"], points=tuple(map(tuple, stroke["points"])),
                                     radius=5, mode="paint")
            t0 = time.perf_counter()
            rows, cols, mask = raster.gesture_mask(gesture, SHAPE)
            box = raster.plane_box("z", stroke["index"], rows, cols)
            block = np.asarray(level0[raster.box_slices(box)])
            block[raster.from_plane(mask, "z")] = value
            level0[raster.box_slices(box)] = block
            return time.perf_counter() - t0

        results: dict[str, dict[str, Any]] = {"bare_zarr_write": _stats([bare(_stroke(rng, value)) for _ in range(200)])}
        asyncio.run(_client(url, cookie, [_stroke(rng, value) for _ in range(3)]))  # warm up
        loads = [(rate, load) for rate, load in ((0.0, "back_to_back"), (args.rate, "paced"))
                 if load in args.loads.split(",")]
        for rate, load in loads:
            for clients in (int(c) for c in args.clients.split(",")):
                batches = [[_stroke(rng, value) for _ in range(args.strokes)] for _ in range(clients)]
                t0 = time.perf_counter()

                async def run_all(batches: list[list[dict]] = batches, rate: float = rate) -> list[list[tuple[float, float]]]:
                    return await asyncio.gather(*(_client(url, cookie, batch, rate, seed)
                                                  for seed, batch in enumerate(batches)))

                timed = [v for per in asyncio.run(run_all()) for v in per]
                elapsed = time.perf_counter() - t0
                results[f"{load}_{clients}_clients"] = {**_stats([v for _, v in timed]),
                                                        "strokes_per_s": len(timed) / elapsed,
                                                        "rate_per_client": rate or None,
                                                        "p95_ms_by_30s": _p95_by_window(timed, t0)}
        base = results["bare_zarr_write"]["p95_ms"]
        for name, r in results.items():
            extra = f"  {r['strokes_per_s']:.0f} strokes/s" if "strokes_per_s" in r else ""
            print(f"{name:>26}: p50 {r['p50_ms']:7.2f} ms  p95 {r['p95_ms']:7.2f} ms  "
                  f"(p95 {r['p95_ms'] / base:5.1f}x bare){extra}")
            if len(r.get("p95_ms_by_30s", ())) > 1:
                print(f"{'':>28}p95 per 30 s: {' '.join(f'{v:.1f}' for v in r['p95_ms_by_30s'])}")
        out = ROOT / "benchmarks" / "results"
        out.mkdir(exist_ok=True)
        (out / "strokes.json").write_text(json.dumps(results, indent=2))
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
