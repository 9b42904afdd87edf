"""Load: N simulated users log in, browse tiles and paint strokes over the websocket at once.

Starts its own stack on 127.0.0.1 only, as scripts/run.sh does: Redis on a free port, a
Celery worker (queues default and gpu, with the beat) and Daphne, on a scratch database
and media root. Each user logs in through the login form, then for ``--seconds`` runs two
loops side by side: image and label tiles of random slices, levels and positions over
HTTP, and strokes over the volume's websocket (send, wait for the ack). The same load is
run with 1 user and with ``--users`` users in the same run; the figure is the throughput
at N users against 1 user. Every failed request, refused stroke or timeout counts as an
error (the aim is zero). Writes benchmarks/results/load-<time>.json.

    .venv/bin/python benchmarks/load.py [--users 16] [--seconds 30] [--shape 16 1024 1024]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks._django import django_scratch  # noqa: E402
from benchmarks._ports import free_port, redis_start, wait_port  # noqa: E402

PASSWORD = "load-bench-password-1"
TILE = 256
TIMEOUT_S = 30.0


@dataclass
class Tally:
    """What one phase measured, summed over its users."""

    tiles: int = 0
    tile_s: list[float] = field(default_factory=list)
    strokes: int = 0
    ack_s: list[float] = field(default_factory=list)
    login_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Target:
    base: str
    volume: int
    shape: tuple[int, int, int]
    levels: tuple[tuple[int, int, int], ...]  # shape of each pyramid level
    value: int


async def _login(session: Any, base: str, username: str) -> None:
    async with session.get(f"{base}/accounts/login/") as r:
        page = await r.text()
        if r.status != 200:
            raise RuntimeError(f"login page answered {r.status}")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    if token is None:
        raise RuntimeError("no CSRF token on the login page")
    form = {"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token.group(1)}
    async with session.post(f"{base}/accounts/login/", data=form, headers={"Referer": f"{base}/accounts/login/"},
                            allow_redirects=False) as r:
        if r.status != 302:
            raise RuntimeError(f"login answered {r.status}, not a redirect")


def _tile_url(t: Target, rng: np.random.Generator) -> str:
    level = int(rng.integers(len(t.levels)))
    z = int(rng.integers(t.shape[0]))
    ny, nx = (-(-s // TILE) for s in t.levels[level][1:])
    ty, tx = int(rng.integers(ny)), int(rng.integers(nx))
    what = "tiles" if rng.random() < 0.7 else "layers/manual/tiles"
    return f"{t.base}/api/volumes/{t.volume}/{what}/z/{z}/{level}/{ty}/{tx}.png"


async def _browse(session: Any, t: Target, rng: np.random.Generator, until: float, tally: Tally) -> None:
    while time.perf_counter() < until:
        url = _tile_url(t, rng)
        t0 = time.perf_counter()
        try:
            async with session.get(url) as r:
                await r.read()
                if r.status != 200:
                    tally.errors.append(f"tile {r.status} {url}")
                    continue
        except (TimeoutError, OSError) as exc:
            tally.errors.append(f"tile {type(exc).__name__} {url}")
            continue
        tally.tile_s.append(time.perf_counter() - t0)
        tally.tiles += 1


def _stroke(t: Target, rng: np.random.Generator) -> dict[str, Any]:
    z = int(rng.integers(t.shape[0]))
    y, x = (float(rng.uniform(20, s - 60)) for s in t.shape[1:])
    points = [[y + 3 * i, x + 2 * i] for i in range(8)]
    return {"uuid": str(uuid.uuid4()), "layer": "manual", "axis": "z", "index": z, "points": points,
            "radius": float(rng.uniform(3, 10)), "value": t.value, "mode": "paint"}


async def _paint(session: Any, t: Target, rng: np.random.Generator, until: float, tally: Tally) -> None:
    url = t.base.replace("http://", "ws://") + f"/ws/volumes/{t.volume}/"
    async with session.ws_connect(url, headers={"Origin": t.base}) as ws:
        # The socket joins the volume's group before it says hello, so others' strokes may come first.
        while (await asyncio.wait_for(ws.receive_json(), timeout=TIMEOUT_S)).get("type") != "hello":
            pass
        while time.perf_counter() < until:
            stroke = _stroke(t, rng)
            t0 = time.perf_counter()
            await ws.send_json({"type": "stroke", "stroke": stroke})
            while True:  # other users' echoes arrive on the same socket
                msg = await asyncio.wait_for(ws.receive_json(), timeout=TIMEOUT_S)
                if msg.get("uuid") == stroke["uuid"] and msg.get("type") in ("ack", "error"):
                    break
            if msg["type"] == "error":
                tally.errors.append(f"stroke {msg.get('code')}: {msg.get('message')}")
                continue
            tally.ack_s.append(time.perf_counter() - t0)
            tally.strokes += 1


async def _user(t: Target, username: str, seed: int, seconds: float, tally: Tally) -> None:
    import aiohttp

    rng = np.random.default_rng(seed)
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    # unsafe=True: keep cookies set by an IP address (127.0.0.1)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), timeout=timeout) as session:
        t0 = time.perf_counter()
        try:
            await _login(session, t.base, username)
        except (TimeoutError, RuntimeError, OSError) as exc:
            tally.errors.append(f"login {username}: {exc}")
            return
        tally.login_s.append(time.perf_counter() - t0)
        until = time.perf_counter() + seconds
        results = await asyncio.gather(_browse(session, t, np.random.default_rng(seed + 1000), until, tally),
                                       _paint(session, t, rng, until, tally), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                tally.errors.append(f"{username}: {type(result).__name__} {result}")


def _phase(t: Target, users: list[str], seconds: float, seed: int) -> dict[str, Any]:
    tally = Tally()

    async def run() -> None:
        await asyncio.gather(*(_user(t, name, seed + i, seconds, tally) for i, name in enumerate(users)))

    started = time.perf_counter()
    asyncio.run(run())
    wall = time.perf_counter() - started

    def ms(values: list[float], q: float) -> float | None:
        return round(1000 * float(np.percentile(values, q)), 2) if values else None

    return {"users": len(users), "seconds": seconds, "wall_s": round(wall, 2),
            "tiles": tally.tiles, "tiles_per_s": round(tally.tiles / seconds, 2),
            "tile_p50_ms": ms(tally.tile_s, 50), "tile_p95_ms": ms(tally.tile_s, 95),
            "strokes": tally.strokes, "strokes_per_s": round(tally.strokes / seconds, 2),
            "ack_p50_ms": ms(tally.ack_s, 50), "ack_p95_ms": ms(tally.ack_s, 95),
            "login_p95_ms": ms(tally.login_s, 95),
            "errors": len(tally.errors), "error_samples": tally.errors[:10]}


def _print(r: dict[str, Any]) -> None:
    print(f"{r['users']:>3} users: {r['tiles_per_s']:7.1f} tiles/s (p50 {r['tile_p50_ms']} ms, "
          f"p95 {r['tile_p95_ms']} ms)  {r['strokes_per_s']:6.1f} strokes/s (ack p50 {r['ack_p50_ms']} ms, "
          f"p95 {r['ack_p95_ms']} ms)  errors {r['errors']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=16, help="simulated users in the loaded phase (1..64)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each phase (1..600)")
    parser.add_argument("--shape", type=int, nargs=3, default=(16, 1024, 1024), help="volume Z Y X")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not 1 <= args.users <= 64:
        raise SystemExit(f"--users {args.users} is outside 1..64")
    if not 1 <= args.seconds <= 600:
        raise SystemExit(f"--seconds {args.seconds} is outside 1..600")

    logs = Path(tempfile.mkdtemp(prefix="emportal-load-logs-"))
    redis, os.environ["REDIS_URL"] = redis_start(logs)  # before Django reads it
    procs: list[subprocess.Popen[bytes]] = [redis]
    try:
        scratch = django_scratch()

        import tifffile

        from annotations.models import Volume
        from annotations.services import project_member_add, volume_import_local

        names = [f"user{i:02d}" for i in range(args.users)]
        memberships = [project_member_add("Load", name, "annotator", password=PASSWORD) for name in names]
        project = memberships[0].project
        rng = np.random.default_rng(args.seed)
        data = rng.integers(0, 255, size=tuple(args.shape), dtype=np.uint8)
        tifffile.imwrite(scratch / "load.tif", data, photometric="minisblack")
        job = volume_import_local(project, scratch / "load.tif", voxel_size_nm=(4.0, 4.0, 4.0))
        assert job.volume_id is not None  # an import job is created with its volume
        volume = Volume.objects.get(pk=job.volume_id)
        value = project.label_classes.get(name="nucleus").value

        env = dict(os.environ)
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "emportal", "worker", "-Q", "default,gpu", "-c", "1", "-B",
             "-s", str(scratch / "celerybeat-schedule"), "--loglevel=WARNING"],
            cwd=ROOT, env=env, stdout=(logs / "worker.log").open("wb"), stderr=subprocess.STDOUT))
        port = free_port()
        procs.append(subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                                       "emportal.asgi:application"], cwd=ROOT, env=env,
                                      stdout=(logs / "daphne.log").open("wb"), stderr=subprocess.STDOUT))
        wait_port(port, procs[-1], "daphne")
        target = Target(base=f"http://127.0.0.1:{port}", volume=volume.pk, shape=tuple(args.shape),
                        levels=tuple((int(z), int(y), int(x)) for z, y, x in (lv["shape"] for lv in volume.levels)), value=value)

        _phase(target, names[:1], min(3.0, args.seconds), seed=10_000)  # warm up: imports, caches
        single = _phase(target, names[:1], args.seconds, seed=args.seed)
        _print(single)
        loaded = _phase(target, names, args.seconds, seed=args.seed + 100)
        _print(loaded)

        def ratio(key: str) -> float | None:
            return round(loaded[key] / single[key], 3) if single[key] else None

        ratios = {"tiles_per_s": ratio("tiles_per_s"), "strokes_per_s": ratio("strokes_per_s")}
        errors = single["errors"] + loaded["errors"]
        print(f"throughput at {args.users} users / 1 user: tiles {ratios['tiles_per_s']}, "
              f"strokes {ratios['strokes_per_s']}; errors {errors} (aim 0)")
        for sample in (single["error_samples"] + loaded["error_samples"])[:5]:
            print("  error:", sample)
        out = ROOT / "benchmarks" / "results"
        out.mkdir(exist_ok=True)
        path = out / f"load-{time.strftime('%Y%m%d-%H%M%S')}.json"
        path.write_text(json.dumps({"args": {**vars(args), "shape": list(args.shape)}, "levels": [list(lv) for lv in target.levels],
                                    "one_user": single, "n_users": loaded, "ratio_n_over_1": ratios,
                                    "errors": errors}, indent=2))
        print(f"wrote {path.relative_to(ROOT)}")
        if errors:
            raise SystemExit(1)
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in reversed(procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    main()
