"""The training flags the accuracy benchmarks share, and the TrainConfig they stand for.

A flag left out means what a user gets: :func:`defaults_config` starts from
:func:`segmentation.core.defaults.training_defaults` for the data set's voxel size and the
device, and only the flags given replace its choices.
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import torch

from segmentation.core.defaults import TrainingDefaults, training_defaults
from segmentation.core.sampling import INTENSITIES
from segmentation.core.training import TrainConfig


def add_training_flags(p: argparse.ArgumentParser, *, scale: int | None, in_slices: int | None,
                       in_slices_help: str = "neighbouring slices as input channels (2.5D: 3)") -> None:
    """The shared flags; ``scale``/``in_slices`` None: the defaults for the voxel size decide."""
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--patience", type=int, default=6, help="validations without improvement before stopping")
    p.add_argument("--lr-floor", type=float, default=TrainConfig.lr_floor, help="TrainConfig.lr_floor (1: constant rate)")
    p.add_argument("--val-split", choices=["slices", "columns"], default=TrainConfig.val_split, help="TrainConfig.val_split")
    p.add_argument("--in-slices", type=int, default=in_slices, help=in_slices_help)
    p.add_argument("--scale", type=int, default=scale,
                   help="XY downsampling the network works at" + (" (default: from the voxel size)" if scale is None else ""))
    p.add_argument("--no-calibrate", action="store_true", help="TrainConfig.calibrate off: every threshold 0.5")
    p.add_argument("--elastic", type=float, help="TrainConfig.elastic (share of patches deformed; default: the defaults', 0)")
    p.add_argument("--intensity", choices=list(INTENSITIES),
                   help="TrainConfig.intensity (intensity augmentation; default: the defaults', basic)")
    p.add_argument("--ema", type=float, help="TrainConfig.ema (decay of the weight average; 0: off; default: the defaults', 0.99)")
    p.add_argument("--gap-weight", type=float,
                   help="TrainConfig.gap_weight (extra weight between nearly touching objects; default: the defaults', 0)")
    p.add_argument("--tag", default="", help="added to the result file's name (runs side by side)")


DATASETS = ["cdeep3m_sbem_mito", "drosophila_vnc_sstem", "hela_sbfsem"]


def add_dataset_run_flags(p: argparse.ArgumentParser, *, minutes: float, saved_as: str) -> None:
    """The flags of a benchmark that trains one model per data set of ``../shared/data`` through
    the default path and scores it: budget, data sets, the shared training flags, patch, TTA,
    HeLa margin, seed, keeping models (as ``benchmarks/results/<saved_as>-<dataset>.pt``)."""
    p.add_argument("--minutes", type=float, default=minutes)
    p.add_argument("--datasets", nargs="*", default=DATASETS)
    add_training_flags(p, scale=None, in_slices=None)
    p.add_argument("--patch", type=int, help="patch side in network pixels (default: the defaults')")
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                   help="flip TTA at prediction (default: as the model records, the defaults' choice)")
    p.add_argument("--hela-margin", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-models", action="store_true",
                   help=f"keep each model as benchmarks/results/{saved_as}-<dataset>.pt")


def _threads(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)


def _given(args: argparse.Namespace, **more: Any) -> dict[str, Any]:
    """The TrainConfig fields the flags (and ``more``) set explicitly."""
    given = {"scale": args.scale, "in_slices": args.in_slices, "elastic": args.elastic, "intensity": args.intensity,
             "ema": args.ema, "gap_weight": args.gap_weight, **more}
    return {k: v for k, v in given.items() if v is not None}


def train_config(args: argparse.Namespace, **more: object) -> TrainConfig:
    """The TrainConfig of the parsed flags (plus ``more``) over TrainConfig's own defaults; sets torch's thread count."""
    _threads(args)
    return TrainConfig(base_width=args.width, patience=args.patience, lr_floor=args.lr_floor, val_split=args.val_split,
                       calibrate=not args.no_calibrate, **_given(args, **more))


def defaults_config(args: argparse.Namespace, voxel_size_nm: Sequence[float] | None,
                    **more: object) -> tuple[TrainingDefaults, TrainConfig, dict[str, Any]]:
    """What a user gets for ``voxel_size_nm`` on ``args.device``, with the flags given on top.

    Returns the defaults, the TrainConfig, and the explicit choices that replaced defaults
    (empty when the benchmark runs the default path). Sets torch's thread count.
    """
    _threads(args)
    defaults = training_defaults(voxel_size_nm, args.device)
    given = _given(args, **more)
    config = defaults.config(base_width=args.width, patience=args.patience, lr_floor=args.lr_floor,
                             val_split=args.val_split, calibrate=not args.no_calibrate, **given)
    return defaults, config, given
