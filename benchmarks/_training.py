"""The training flags the accuracy benchmarks share, and the TrainConfig they stand for."""
from __future__ import annotations

import argparse

import torch

from segmentation.core.training import TrainConfig


def add_training_flags(p: argparse.ArgumentParser, *, scale: int, in_slices: int | None,
                       in_slices_help: str = "neighbouring slices as input channels (2.5D: 3)") -> None:
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--patience", type=int, default=6, help="validations without improvement before stopping")
    p.add_argument("--lr-floor", type=float, default=TrainConfig.lr_floor, help="TrainConfig.lr_floor (1: constant rate)")
    p.add_argument("--val-split", choices=["slices", "columns"], default=TrainConfig.val_split, help="TrainConfig.val_split")
    p.add_argument("--in-slices", type=int, default=in_slices, help=in_slices_help)
    p.add_argument("--scale", type=int, default=scale, help="XY downsampling the network works at")
    p.add_argument("--no-calibrate", action="store_true", help="TrainConfig.calibrate off: every threshold 0.5")
    p.add_argument("--elastic", type=float, default=TrainConfig.elastic, help="TrainConfig.elastic (share of patches deformed)")
    p.add_argument("--ema", type=float, default=TrainConfig.ema, help="TrainConfig.ema (decay of the weight average; 0: off)")
    p.add_argument("--tag", default="", help="added to the result file's name (runs side by side)")


def train_config(args: argparse.Namespace, **more: object) -> TrainConfig:
    """The TrainConfig of the parsed flags (plus ``more``); sets torch's thread count when asked."""
    if args.threads:
        torch.set_num_threads(args.threads)
    return TrainConfig(base_width=args.width, scale=args.scale, patience=args.patience, lr_floor=args.lr_floor,
                       val_split=args.val_split, in_slices=args.in_slices, calibrate=not args.no_calibrate,
                       elastic=args.elastic, ema=args.ema, **more)  # type: ignore[arg-type]
