"""Several runs of ``benchmarks/loop.py``, averaged: is the suggested arm better on average?

One loop run compares one fine-tune per arm and round, and one 110-step fine-tune moves Dice by
about as much as the arms differ. This reads several runs of the same loop (other ``--seed``:
other random draws and fine-tuning seeds, same round 0) and gives, per round, the mean Dice of
each arm, the mean paired difference (suggested minus the mean of the same seed's random draws)
with its standard error, and how many single comparisons the suggested arm won.

An arm does not depend on the others (each has its own chain of models, and the random draws
do not touch the generator while the suggested arm runs), so another ranking can be run alone
(``--random-seeds 0 --rank ...``) and judged against the random arms of earlier runs with the
same seeds (``--random-from``).

Usage (from the project root)::

    .venv/bin/python benchmarks/loop_summary.py benchmarks/results/loop-A.json loop-B.json ... [--random-from loop-C.json ...] [--tag T]

Runs of ``benchmarks/loop_unseen.py`` (the loop on a region the labels never came from) also give,
per round, the share of the error in the tiles just painted that the fine-tune removed, per arm.

Prints the table (with those shares as suggested/random); writes benchmarks/results/loop-summary-<time>[-TAG].json and a plot beside it (.svg).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
# What every arm's numbers depend on: runs merged or averaged must agree on all of these.
SHARED = ("datasets", "rounds", "k", "tile", "round_steps", "base", "balance", "keep_last", "ema", "scale")
# What only the suggested arm depends on: every seed's suggested arm must agree on these.
RANKING = ("rank", "tta", "edge", "mix")
# Flags added to loop.py after some runs were written: those runs ran with these values.
ADDED = {"ema": 0.0, "rank": "entropy", "mix": 0.0, "edge": 0, "tta": False}


def _arg(run: dict, key: str) -> object:
    return run["args"].get(key, ADDED.get(key))


def merge_by_seed(runs: list[dict], random_from: Sequence[dict] = ()) -> list[dict]:
    """One run per seed of ``runs``, with the random arms of ``random_from`` files of the same seed added."""
    first = {k: _arg(runs[0], k) for k in SHARED}
    for run in [*runs, *random_from]:
        diff = [k for k in SHARED if _arg(run, k) != first[k]]
        if diff:
            raise ValueError(f"runs differ in {diff}: not the same loop")
    by_seed: dict[int, dict] = {}
    for run in runs:
        if run["args"]["seed"] in by_seed:
            raise ValueError(f"two runs with seed {run['args']['seed']}")
        by_seed[run["args"]["seed"]] = {"args": run["args"], "results": [
            {"dataset": r["dataset"], "arms": dict(r["arms"])} for r in run["results"]]}
    for run in random_from:
        merged = by_seed.get(run["args"]["seed"])
        for into, result in zip(merged["results"] if merged else [], run["results"]):
            # the same seed draws the same random tiles in every file: keep the first of each
            into["arms"].update({n: rows for n, rows in result["arms"].items() if n != "suggested" and n not in into["arms"]})
    return list(by_seed.values())


def _corrected(arms: list[dict], r: int) -> dict[str, float]:
    """Mean share of the error in round ``r``'s painted tiles that its fine-tune removed ("gone")
    and of the voxels wrong before that are right after ("fixed"), per arm kind, over seeds and
    draws: runs of ``benchmarks/loop_unseen.py`` record them; others give nothing."""
    out: dict[str, float] = {}
    for kind in ("suggested", "random"):
        rows = [rows[r] for a in arms for name, rows in a.items() if (name == "suggested") == (kind == "suggested")]
        if r and rows and all("corrected" in row for row in rows):
            for what in ("gone", "fixed"):
                out[f"{what}_{kind}"] = float(np.nanmean([row["corrected"][what] for row in rows]))
    return out


def summarize(runs: list[dict], random_from: Sequence[dict] = ()) -> list[dict]:
    """Per dataset and round: each arm's Dice over the seeds and the paired suggested-minus-random gap."""
    runs = merge_by_seed(runs, random_from)
    rankings = {tuple(_arg(run, k) for k in RANKING) for run in runs}
    if len(rankings) > 1:
        raise ValueError(f"the suggested arms were ranked differently: {sorted(map(str, rankings))}")
    ranking = dict(zip(RANKING, rankings.pop()))
    out = []
    for i, result in enumerate(runs[0]["results"]):
        arms = [run["results"][i]["arms"] for run in runs]
        if any(len(a) < 2 for a in arms):
            raise ValueError("every seed needs at least one random arm (--random-from a run of that seed)")
        rounds = []
        for r in range(len(arms[0]["suggested"])):
            suggested = np.array([a["suggested"][r]["dice"] for a in arms])
            random = [[rows[r]["dice"] for name, rows in a.items() if name != "suggested"] for a in arms]
            gap = suggested - np.array([np.mean(x) for x in random])
            rounds.append({
                "round": r,
                "suggested": suggested.tolist(),
                "random": random,
                "suggested_mean": float(suggested.mean()),
                "random_mean": float(np.mean([d for x in random for d in x])),
                "gap_mean": float(gap.mean()),
                "gap_se": float(gap.std(ddof=1) / np.sqrt(len(gap))) if len(gap) > 1 else float("nan"),
                "wins": int(sum(s > d for s, x in zip(suggested, random) for d in x)),
                "comparisons": sum(len(x) for x in random),
                "labeled_voxels": arms[0]["suggested"][r]["labeled_voxels"],
                **_corrected(arms, r),
            })
        out.append({"dataset": result["dataset"], "runs": len(runs), "seeds": [run["args"]["seed"] for run in runs],
                    "ranking": ranking, "rounds": rounds})
    return out


def plot_svg(summary: dict, width: int = 480, height: int = 300) -> str:
    """Dice per round: every run of each arm as a dot, each arm's mean as a line."""
    rounds = summary["rounds"]
    draws = {"suggested": lambda r: r["suggested"], "random": lambda r: [d for run in r["random"] for d in run]}
    values = [d for r in rounds for runs_of in draws.values() for d in runs_of(r)]
    lo, hi = min(values) - 0.002, max(values) + 0.002
    left, right, top, bottom = 56, 120, 30, 40

    def xy(r: float, d: float) -> tuple[float, float]:
        x = left + (width - left - right) * r / max(len(rounds) - 1, 1)
        return x, top + (height - top - bottom) * (hi - d) / (hi - lo)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
             '<rect width="100%" height="100%" fill="white"/>',
             f'<text x="{left}" y="18">{summary["dataset"]}: mitochondria Dice per round ({summary["runs"]} runs)</text>']
    for tick in np.linspace(lo, hi, 5):
        _, y = xy(0, tick)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{tick:.3f}</text>')
    for r in rounds:
        x, _ = xy(r["round"], lo)
        parts.append(f'<text x="{x:.1f}" y="{height - bottom + 18}" text-anchor="middle">round {r["round"]}</text>')
    label_y = {key: xy(len(rounds) - 1, rounds[-1][f"{key}_mean"])[1] for key in ("suggested", "random")}
    if abs(label_y["suggested"] - label_y["random"]) < 14:  # keep the two labels apart
        upper = "suggested" if label_y["suggested"] <= label_y["random"] else "random"
        mid = (label_y["suggested"] + label_y["random"]) / 2
        label_y = {k: mid - 7 if k == upper else mid + 7 for k in label_y}
    for key, colour, dx in (("suggested", "#d62728", -4), ("random", "#1f77b4", 4)):
        runs_of = draws[key]
        line = " ".join("{:.1f},{:.1f}".format(*xy(r["round"], r[f"{key}_mean"])) for r in rounds)
        parts.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for r in rounds:
            for d in runs_of(r):
                x, y = xy(r["round"], d)
                parts.append(f'<circle cx="{x + dx:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}" fill-opacity="0.5"/>')
        parts.append(f'<text x="{width - right + 10}" y="{label_y[key] + 4:.1f}" fill="{colour}">{key} (mean)</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="loop-*.json files written by benchmarks/loop.py, one per seed")
    p.add_argument("--random-from", nargs="*", default=[], help="runs whose random arms join those of the same seed")
    p.add_argument("--tag", default="", help="added to the output files' names")
    args = p.parse_args()
    read = lambda files: [json.loads(Path(f).read_text()) for f in files]  # noqa: E731
    summaries = summarize(read(args.runs), read(args.random_from))
    stamp = time.strftime("%Y%m%d-%H%M%S") + (f"-{args.tag}" if args.tag else "")
    out = ROOT / "benchmarks" / "results"
    for s in summaries:
        print(f"{s['dataset']}: seeds {s['seeds']}, suggested arm ranked by {s['ranking']}; "
              "gap = suggested minus the mean of the same seed's random draws")
        print(f"{'round':>5s} {'suggested':>10s} {'random':>10s} {'gap':>16s} {'wins':>8s} {'labeled':>10s}")
        for r in s["rounds"]:
            print(f"{r['round']:5d} {r['suggested_mean']:10.4f} {r['random_mean']:10.4f} "
                  f"{r['gap_mean']:+8.4f} ± {r['gap_se']:.4f} {r['wins']:3d}/{r['comparisons']:<4d} {r['labeled_voxels']:10d}"
                  + ("".join(f"  {w} {r[f'{w}_suggested']:.2f}/{r[f'{w}_random']:.2f}" for w in ("gone", "fixed"))
                     if "gone_suggested" in r else ""))
        (out / f"loop-summary-{stamp}-{s['dataset']}.svg").write_text(plot_svg(s))
    path = out / f"loop-summary-{stamp}.json"
    path.write_text(json.dumps({"runs": args.runs, "random_from": args.random_from, "summaries": summaries}, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
