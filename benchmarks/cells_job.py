"""The cells job at scale: peak RSS of the Django job's default run (fusion, no compare) as the
volume grows, and (``--workers``) its speed-up on 2 real Celery workers against 1.

Each size runs in a fresh process on a throw-away database and media root
(:mod:`benchmarks._django`): a volume from :mod:`benchmarks.bigvolume` (FIB-SEM-like, truth
for every cell) is generated with ``Z`` slices, its truth cells painted into the "cells"
layer on every ``--every``-th slice (the keys), a prediction layer holding the truth
interior (cells > 0) as the cell class, the truth cells as "cells_truth" (so the job counts
Dice too), all written slab by slab.

Without ``--workers``, ``volume_cells_run`` runs in process through ``job_running`` with no
helper task, and the process's peak RSS (VmHWM) is reset just before it and read after it. A
job that reads the volume whole holds, at least, the ids of every voxel (4 bytes each) several
times over; a bounded one stays flat as ``Z`` grows.

With ``--workers 1 2``, a private Redis (free port) is started and, on the same volume, the job
is queued as the app queues it (``volume_cells``, ``cells_task.delay``) once on 1 and once on 2
fresh Celery workers of one pool process each (``-Q default,gpu -c 1``, as scripts/run.sh
starts them) with ``EMPORTAL_CELLS_HELPERS`` = workers - 1: the job's own task and its
``cells_interval`` helper tasks share the key-slice intervals. Per count: the job's seconds
(its ``started`` to ``finished``), the intervals' part of it (to the last interval's result
file) and the stitch and write after it, which intervals each worker ran, CPU seconds of the
workers' processes (their ratio is the cost of splitting, which the load does not move), peak
RSS of each pool process, and whether the "cells_auto" layer (every pyramid level, byte for
byte) and the cell table equal the first count's. Prints the ratio 2-vs-1.

Usage (from the project root)::

    .venv/bin/python benchmarks/cells_job.py [--sizes 64 256] [--yx 512] [--voxel-nm 40] [--cell-um 6] [--every 16]
    .venv/bin/python benchmarks/cells_job.py --sizes 256 --workers 1 2

Prints one line per size (per count) and writes benchmarks/results/cells-job-<time>.json
(``cells-job-workers-<time>.json`` with ``--workers``; exit status 1 if the results differ), or ``--out``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.cells_scale import hwm_bytes  # noqa: E402

SLAB = 16


def _reset_hwm() -> bool:
    """Start VmHWM afresh at the current RSS (Linux: ``5`` into clear_refs), so the peak
    read after the job is the job's, not the volume generator's; False where refused."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _volume_setup(z: int, yx: int, voxel_nm: float, cell_um: float, every: int) -> tuple[Any, Any, float]:
    """Generate the volume into a fresh project and paint its layers (module docstring); returns
    the volume, its annotator and the seconds the generator took. Django must be set up."""
    import zarr

    from annotations.imaging import omezarr
    from annotations.layer_names import LayerName
    from annotations.layers import layer_bump, layer_create
    from annotations.models import Volume
    from annotations.services import project_member_add, volume_finish_import
    from annotations.storage import volume_zarr_path
    from benchmarks.bigvolume import generate
    from segmentation.models import ModelVersion, SegmentationRun

    membership = project_member_add("Bench", "bench", "annotator")
    project, user = membership.project, membership.user
    src = Path(tempfile.mkdtemp(prefix="cells-job-")) / "generated.ome.zarr"
    t = time.perf_counter()
    generate((z, yx, yx), out=src, fmt="ome-zarr", voxel_nm=(voxel_nm,) * 3, cell_um=cell_um, quiet=True)
    generated_s = time.perf_counter() - t
    volume = Volume.objects.create(project=project, name="cells", source={"file": "bigvolume.py"})
    dest = volume_zarr_path(volume)
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("labels"))
    volume = volume_finish_import(volume, info=omezarr.read_info(dest), voxel_size_nm=(voxel_nm,) * 3,
                                  source_format="ome-zarr")
    truth = zarr.open_array(str(src / "labels" / "cells" / "0"), mode="r")
    classes = {c.name: c.value for c in project.label_classes.all()}
    model = ModelVersion.objects.create(project=project, volume=volume, weights="models/none.pt", classes=classes,
                                        hierarchy={}, config={"interior_class": "cell"})
    layers = {name: layer_create(volume, name) for name in (LayerName.CELLS, LayerName.PREDICTION)}
    layers[LayerName.CELLS_TRUTH] = layer_create(volume, LayerName.CELLS_TRUTH, kind="instances", editable=False)
    arrays = {name: omezarr.open_label_level(dest, name, 0, mode="r+") for name in layers}
    for z0 in range(0, z, SLAB):
        z1 = min(z0 + SLAB, z)
        cells = np.asarray(truth[z0:z1]).astype(np.uint32)
        keys = np.zeros_like(cells)
        for i in range(z0, z1):
            if i % every == 0 or i == z - 1:
                keys[i - z0] = cells[i - z0]
        pred = np.where(cells > 0, classes["cell"], classes["background"])
        for name, data in ((LayerName.CELLS, keys), (LayerName.PREDICTION, pred), (LayerName.CELLS_TRUTH, cells)):
            arrays[name][z0:z1] = data.astype(arrays[name].dtype)
            omezarr.update_label_pyramid(dest, name, z=(z0, z1))
            layer_bump(layers[name], max_value=int(data.max(initial=0)))
    shutil.rmtree(src.parent, ignore_errors=True)
    SegmentationRun.objects.create(volume=volume, model_version=model, layer=LayerName.PREDICTION)
    return volume, user, generated_s


def child(z: int, yx: int, voxel_nm: float, cell_um: float, every: int) -> dict[str, Any]:
    """One measured job (in its own process)."""
    from benchmarks._django import django_scratch

    django_scratch()
    from emportal.jobs.services import job_running
    from segmentation.cells.services import volume_cells, volume_cells_run
    from segmentation.models import SegmentationRun

    volume, user, generated_s = _volume_setup(z, yx, voxel_nm, cell_um, every)
    job = volume_cells(volume, user, method="fusion", helpers=0, enqueue=lambda job_id: None)
    reset = _reset_hwm()
    before = hwm_bytes()
    t = time.perf_counter()
    with job_running(job.pk) as ctx:
        volume_cells_run(ctx)
    seconds = time.perf_counter() - t
    peak = hwm_bytes()
    job.refresh_from_db()
    run = SegmentationRun.objects.filter(job=job).first()
    return {"shape": [z, yx, yx], "state": job.state, "message": job.message, "seconds": round(seconds, 1),
            "seconds_per_slice": round(seconds / z, 3), "generated_s": round(generated_s, 1),
            "hwm_reset": reset, "rss_before_mib": round(before / 2**20, 1), "peak_rss_mib": round(peak / 2**20, 1),
            "growth_mib": round((peak - before) / 2**20, 1), "ids_mib": round(z * yx * yx * 4 / 2**20, 1),
            "cells": len(run.outputs["cells"]) if run else None,
            "dice": run.outputs["dice"].get("fusion", {}).get("mean") if run else None}


# -- the job on real Celery workers (--workers) -------------------------------------------------

def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (a Celery worker's pool processes), from /proc."""
    kids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
            kids.append(int(entry.name))
    return kids


def _proc_usage(pid: int) -> dict[str, float]:
    """CPU seconds (user + system), RSS and peak RSS (VmHWM) in MiB of a live process; zeros once gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {"cpu_s": 0.0, "rss_mib": 0.0, "hwm_mib": 0.0}
    fields = stat[stat.rindex(")") + 2:].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    kib = {line.split(":")[0]: int(line.split()[1]) for line in status.splitlines()
           if line.startswith(("VmRSS:", "VmHWM:"))}
    return {"cpu_s": cpu, "rss_mib": kib.get("VmRSS", 0) / 1024, "hwm_mib": kib.get("VmHWM", 0) / 1024}


def _pool_usage(workers: list[subprocess.Popen[bytes]]) -> dict[int, dict[str, float]]:
    """Usage of every worker's main process and its pool processes, by pid."""
    pids = [w.pid for w in workers] + [k for w in workers for k in _children(w.pid)]
    return {pid: _proc_usage(pid) for pid in pids}


def _workers_start(n: int, helpers: int, logs: Path) -> list[subprocess.Popen[bytes]]:
    """``n`` Celery workers of one pool process each on the app's queues, as scripts/run.sh starts
    them, with EMPORTAL_CELLS_HELPERS=``helpers``; returns once every one answers a ping."""
    from emportal.celery import app

    env = {**os.environ, "EMPORTAL_CELLS_HELPERS": str(helpers), "PYTHONUNBUFFERED": "1"}
    procs = []
    for i in range(n):
        log = (logs / f"worker-{n}-{i}.log").open("wb")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "emportal", "worker", "-Q", "default,gpu", "-c", "1",
             "--without-gossip", "--without-mingle", "-n", f"cellsbench{n}x{i}-{os.getpid()}@%h",
             "--loglevel=INFO"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
    deadline = time.time() + 180
    while time.time() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"a worker exited with {p.returncode}; see {logs}")
        if len(app.control.inspect(timeout=0.5).ping() or {}) >= n:
            return procs
        time.sleep(0.2)
    raise RuntimeError(f"{n} workers did not answer within 180 s; see {logs}")


def _workers_stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _layer_digest(volume: Any, name: str) -> str:
    """sha256 over every pyramid level of a label layer, read slab by slab (never whole)."""
    from annotations.imaging import omezarr
    from annotations.storage import volume_zarr_path

    digest = hashlib.sha256()
    for level in range(len(volume.levels)):
        arr = omezarr.open_label_level(volume_zarr_path(volume), name, level)
        digest.update(f"{level}:{arr.shape}:{arr.dtype}".encode())
        for z0 in range(0, int(arr.shape[0]), SLAB):
            digest.update(np.ascontiguousarray(arr[z0:z0 + SLAB]).tobytes())
    return digest.hexdigest()


def _job_on_workers(volume: Any, user: Any, n: int, logs: Path) -> dict[str, Any]:
    """The default cells job on ``n`` fresh workers (its task and n - 1 helper tasks); its figures."""
    from annotations.layer_names import LayerName
    from emportal.jobs.models import Job
    from segmentation.cells.intervals import cells_dir
    from segmentation.cells.services import volume_cells
    from segmentation.models import SegmentationRun

    procs = _workers_start(n, n - 1, logs)
    try:
        before = _pool_usage(procs)
        load_before = os.getloadavg()
        t0 = time.time()
        job = volume_cells(volume, user, method="fusion")  # helpers: the workers' EMPORTAL_CELLS_HELPERS
        folder = cells_dir(job.pk)
        done: dict[str, dict[str, Any]] = {}  # interval result files, read while the job's folder lives
        while (job := Job.objects.get(pk=job.pk)).state not in Job.FINISHED:
            if time.time() - t0 > 3600:
                raise RuntimeError(f"the cells job did not finish within an hour; see {logs}")
            try:
                for entry in os.scandir(folder):
                    if entry.name.startswith("interval-") and entry.name.endswith(".json") and entry.name not in done:
                        done[entry.name] = {"mtime": entry.stat().st_mtime,
                                            **json.loads(Path(entry.path).read_text())}
            except (OSError, ValueError):
                pass  # the folder is not there yet or already gone
            time.sleep(0.1)
        wall = time.time() - t0
        load_after = os.getloadavg()
        after = _pool_usage(procs)
    finally:
        _workers_stop(procs)
    if job.state != Job.State.SUCCEEDED:
        raise RuntimeError(f"the cells job {job.state}: {job.message}\n{job.log[-2000:]}")
    assert job.started is not None and job.finished is not None
    run = SegmentationRun.objects.get(job=job)
    started, finished = job.started.timestamp(), job.finished.timestamp()
    intervals_end = max((d["mtime"] for d in done.values()), default=None)
    by_worker: dict[str, int] = {}
    for d in done.values():
        by_worker[d["worker"]] = by_worker.get(d["worker"], 0) + 1
    pools = [pid for pid in after if pid not in {p.pid for p in procs}]
    return {
        "workers": n, "helpers": n - 1, "seconds": round(finished - started, 2), "wall_s": round(wall, 2),
        "intervals_s": round(intervals_end - started, 2) if intervals_end else None,
        "stitch_and_write_s": round(finished - intervals_end, 2) if intervals_end else None,
        "intervals": len(done), "intervals_by_worker": by_worker,
        "cpu_s": round(sum(after[p]["cpu_s"] - before.get(p, {"cpu_s": 0.0})["cpu_s"] for p in after), 2),
        "peak_rss_mib": [round(after[p]["hwm_mib"], 1) for p in pools],
        "rss_before_mib": [round(before[p]["rss_mib"], 1) for p in pools if p in before],
        "load_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "cells": len(run.outputs["cells"]), "dice": run.outputs["dice"].get("fusion", {}).get("mean"),
        "_table": run.outputs["cells"], "_digest": _layer_digest(volume, LayerName.CELLS_AUTO),
    }


def child_workers(z: int, yx: int, voxel_nm: float, cell_um: float, every: int, counts: list[int]) -> dict[str, Any]:
    """The cells job on 1, then 2 (``counts``) real Celery workers, on one volume (in its own process).

    A private Redis on a free port is the broker; the database and media root are a
    throw-away folder that the workers share. Each count gets fresh workers, so their peak
    RSS is this job's.
    """
    from benchmarks._ports import redis_start

    home = Path(tempfile.mkdtemp(prefix="cells-job-services-"))
    redis, url = redis_start(home / "redis")
    os.environ["REDIS_URL"] = url  # before Django reads its settings: the broker of this process and the workers
    try:
        from benchmarks._django import django_scratch

        scratch = django_scratch()
        logs = scratch / "logs"
        logs.mkdir()
        volume, user, generated_s = _volume_setup(z, yx, voxel_nm, cell_um, every)
        runs = [_job_on_workers(volume, user, n, logs) for n in counts]
    finally:
        redis.terminate()
        redis.wait(timeout=30)
        shutil.rmtree(home, ignore_errors=True)
    digest, table = runs[0]["_digest"], runs[0]["_table"]
    for r in runs:
        r["equal_to_first"] = bool(r["_digest"] == digest and r["_table"] == table)
        r["digest"] = r.pop("_digest")
        del r["_table"]
    return {"shape": [z, yx, yx], "every": every, "generated_s": round(generated_s, 1), "runs": runs}


def _args_json(args: argparse.Namespace) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}


def _workers_main(args: argparse.Namespace) -> int:
    """--workers: one child per size, each running the job on every worker count on one volume."""
    rows = []
    for z in args.sizes:
        cmd = [sys.executable, __file__, "--child-workers", str(z), str(args.yx), str(args.voxel_nm),
               str(args.cell_um), str(args.every), *map(str, args.workers)]
        got = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if got.returncode:
            print(got.stdout[-3000:], got.stderr[-5000:], file=sys.stderr)
            return got.returncode
        row: dict[str, Any] = json.loads(got.stdout.strip().splitlines()[-1])
        one = row["runs"][0]
        for r in row["runs"]:
            r["speedup_vs_first"] = round(one["seconds"] / r["seconds"], 3)
            r["intervals_speedup_vs_first"] = (round(one["intervals_s"] / r["intervals_s"], 3)
                                               if one["intervals_s"] and r["intervals_s"] else None)
            r["cpu_ratio_vs_first"] = round(r["cpu_s"] / one["cpu_s"], 3) if one["cpu_s"] else None
            print(f"{' x '.join(map(str, row['shape']))}, {r['workers']} worker(s): {r['seconds']} s "
                  f"(intervals {r['intervals_s']} s over {r['intervals_by_worker']}, stitch and write "
                  f"{r['stitch_and_write_s']} s), CPU {r['cpu_s']} s, peak RSS per pool process "
                  f"{r['peak_rss_mib']} MiB, {r['cells']} cells, Dice {r['dice']}, equal to {one['workers']} "
                  f"worker(s): {r['equal_to_first']}, load {r['load_before_after']}", flush=True)
        last = row["runs"][-1]
        print(f"{last['workers']} workers / {one['workers']}: {last['speedup_vs_first']}x the job "
              f"({last['intervals_speedup_vs_first']}x its intervals), CPU ratio {last['cpu_ratio_vs_first']}; "
              f"results identical: {all(r['equal_to_first'] for r in row['runs'])}", flush=True)
        rows.append(row)
    result = {"benchmark": "cells_job_workers", "machine": platform.platform(), "cpus": os.cpu_count(),
              "args": _args_json(args), "sizes": rows}
    path = args.out or ROOT / "benchmarks" / "results" / f"cells-job-workers-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1))
    print(f"wrote {path}")
    return 0 if all(r["equal_to_first"] for row in rows for r in row["runs"]) else 1


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        z, yx, voxel_nm, cell_um, every = sys.argv[2:7]
        print(json.dumps(child(int(z), int(yx), float(voxel_nm), float(cell_um), int(every))))
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "--child-workers":
        z, yx, voxel_nm, cell_um, every, *counts = sys.argv[2:]
        print(json.dumps(child_workers(int(z), int(yx), float(voxel_nm), float(cell_um), int(every),
                                       [int(c) for c in counts])))
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--yx", type=int, default=512)
    ap.add_argument("--voxel-nm", type=float, default=40.0)
    ap.add_argument("--cell-um", type=float, default=6.0)
    ap.add_argument("--every", type=int, default=16)
    ap.add_argument("--workers", type=int, nargs="+", default=None, metavar="N",
                    help="run the job on N real Celery workers for each N (e.g. 1 2) instead of in process")
    ap.add_argument("--out", type=Path, default=None, help="the JSON file (default: benchmarks/results/, timestamped)")
    args = ap.parse_args()
    if args.workers:
        if min(args.workers) < 1:
            ap.error("--workers counts must be >= 1")
        return _workers_main(args)
    rows = []
    for z in args.sizes:
        load0 = os.getloadavg()[0]
        cmd = [sys.executable, __file__, "--child", str(z), str(args.yx), str(args.voxel_nm), str(args.cell_um),
               str(args.every)]
        got = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
        row: dict[str, Any] = json.loads(got.stdout.strip().splitlines()[-1])
        row["load_before_after"] = [round(load0, 2), round(os.getloadavg()[0], 2)]
        rows.append(row)
        print(f"{' x '.join(map(str, row['shape']))}: {row['state']} in {row['seconds']} s "
              f"({row['seconds_per_slice']} s/slice), peak RSS {row['peak_rss_mib']} MiB "
              f"(+{row['growth_mib']} MiB during the job; the ids alone are {row['ids_mib']} MiB), "
              f"{row['cells']} cells, Dice {row['dice']}, load {row['load_before_after']}", flush=True)
    result = {"machine": platform.platform(), "cpus": os.cpu_count(), "args": _args_json(args), "runs": rows}
    path = args.out or ROOT / "benchmarks" / "results" / f"cells-job-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
