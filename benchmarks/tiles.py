"""Tile throughput through the Django view against encoding the same tiles straight from zarr.

The figure is the ratio of tiles/s (view / direct; aim >= 0.7). Both paths read the same
chunks and encode the same PNGs in the same run; the view adds routing, session auth,
the role check and the ETag. Writes benchmarks/results/tiles.json.

    .venv/bin/python benchmarks/tiles.py [--tiles 400] [--shape 8 2048 2048]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._django import django_scratch  # noqa: E402


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiles", type=int, default=400)
    parser.add_argument("--shape", type=int, nargs=3, default=(8, 2048, 2048))
    args = parser.parse_args()
    scratch = django_scratch()

    import tifffile
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import Client, RequestFactory

    from annotations.imaging import omezarr, tiles
    from annotations.services import project_member_add, volume_import_local
    from annotations.storage import volume_zarr_path

    membership = project_member_add("Bench", "bench", "viewer")
    rng = np.random.default_rng(0)
    data = rng.integers(0, 255, size=tuple(args.shape), dtype=np.uint8)
    tifffile.imwrite(scratch / "bench.tif", data, photometric="minisblack")
    job = volume_import_local(membership.project, scratch / "bench.tif", voxel_size_nm=(4.0, 4.0, 4.0))
    volume_id = job.volume_id
    zarr_path = volume_zarr_path(job.volume)

    nz, ny, nx = args.shape
    grid_y, grid_x = (ny + 255) // 256, (nx + 255) // 256
    requests = [(int(rng.integers(nz)), int(rng.integers(grid_y)), int(rng.integers(grid_x)))
                for _ in range(args.tiles)]
    level0 = omezarr.open_level(zarr_path, 0)

    def direct(z: int, ty: int, tx: int) -> bytes:
        return tiles.render_image_tile(level0, axis="z", index=z, ty=ty, tx=tx, window=None, fmt="png")

    client = Client()
    client.force_login(membership.user)
    # The whole Django request path a server would run (URL routing, middleware,
    # session auth, role check, view), without the test client's extra bookkeeping.
    handler = WSGIHandler()
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"

    def through_view(z: int, ty: int, tx: int) -> bytes:
        environ = RequestFactory().get(f"/api/volumes/{volume_id}/tiles/z/{z}/0/{ty}/{tx}.png",
                                       HTTP_COOKIE=cookie).environ
        status: list[str] = []
        body = b"".join(handler(environ, lambda s, headers: status.append(s)))
        assert status[0].startswith("200"), status
        return body

    for fn in (direct, through_view):  # warm caches and imports once
        fn(*requests[0])
    # Interleave the two paths tile by tile so that whatever else the machine is doing
    # weighs on both alike.
    latencies: dict[str, list[float]] = {"direct": [], "view": []}
    for i, request in enumerate(requests):
        order = (("direct", direct), ("view", through_view))
        for name, fn in order if i % 2 else order[::-1]:
            t0 = time.perf_counter()
            fn(*request)
            latencies[name].append(time.perf_counter() - t0)
    results = {name: {"tiles_per_s": len(values) / sum(values), "p50_ms": 1000 * statistics.median(values),
                      "p95_ms": 1000 * _percentile(values, 95)} for name, values in latencies.items()}
    ratio = results["view"]["tiles_per_s"] / results["direct"]["tiles_per_s"]
    for name, r in results.items():
        print(f"{name:>12}: {r['tiles_per_s']:7.1f} tiles/s  p50 {r['p50_ms']:6.2f} ms  p95 {r['p95_ms']:6.2f} ms")
    print(f"ratio view/direct: {ratio:.2f} (aim >= 0.7)")
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "tiles.json").write_text(json.dumps({"shape": list(args.shape), "tiles": args.tiles, "ratio": ratio,
                                                **results}, indent=2))


if __name__ == "__main__":
    main()
