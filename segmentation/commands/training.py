"""Subcommands ``train``, ``predict``, ``export``, ``evaluate`` and ``suggest`` of ``python -m segmentation.cli``.

Volumes are multipage TIFFs (ZYX) or zarr arrays (a ``.zarr`` path; for an OME-Zarr group
the full-resolution array ``0`` is used). Zarr inputs are read block by block; a ``.zarr``
output of ``predict`` is an OME-Zarr image with the prediction as its NGFF label layer,
written block by block, so large volumes stream.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from annotations.layer_names import LayerName

__all__ = ["register"]


# ----------------------------------------------------------------------------- io
def _is_zarr(path: str) -> bool:
    p = Path(path)
    return p.suffix == ".zarr" or (p.is_dir() and ((p / "zarr.json").exists() or (p / ".zarray").exists() or (p / ".zgroup").exists()))


def read_volume(path: str, *, lazy: bool = False) -> Any:
    """A ZYX volume from TIFF or zarr; zarr stays lazy when ``lazy``."""
    if not Path(path).exists():
        raise FileNotFoundError(f"{path!r} does not exist")
    if _is_zarr(path):
        import zarr

        node: Any = zarr.open(path, mode="r")  # an array or a group; checked below
        if isinstance(node, zarr.Group):
            if "0" not in node:
                raise ValueError(f"zarr group {path!r} has no array '0'")
            node = node["0"]
            if not isinstance(node, zarr.Array):
                raise ValueError(f"zarr group {path!r}: '0' is a group, not an array")
        if len(node.shape) > 3:  # OME-Zarr (t, c, z, y, x) with singleton leading axes
            if any(n != 1 for n in node.shape[:-3]):
                raise ValueError(f"zarr array {path!r} has shape {node.shape}; expected ZYX")
            return _Squeezed(node) if lazy else np.asarray(node[...]).reshape(node.shape[-3:])
        return node if lazy else np.asarray(node[...])
    import tifffile

    return tifffile.imread(path)


class _Squeezed:
    """Lazy view of a zarr array with singleton leading axes dropped."""

    def __init__(self, array: Any) -> None:
        self.array = array
        self.lead = len(array.shape) - 3
        self.shape = tuple(array.shape[self.lead :])
        self.dtype = array.dtype

    def __getitem__(self, key: Any) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        return np.asarray(self.array[(0,) * self.lead + key])


def _voxel_size_of(path: str) -> tuple[float, float, float] | None:
    """The voxel size (nm, ZYX) a TIFF, HDF5, MRC or OME-Zarr states in its header, if any."""
    from annotations.imaging.readers import open_source

    try:
        with open_source(Path(path)) as source:
            return source.voxel_size_nm
    except (ValueError, OSError):
        return None


def _write_volume(path: str, array: np.ndarray, *, voxel_size_nm: tuple[float, float, float] | None = None) -> None:
    """Zarr, or a zlib TIFF with ZYX axes: an OME-TIFF calibrated in µm when the voxel size is known."""
    if _is_zarr(path):
        import zarr

        z = zarr.create_array(path, shape=array.shape, dtype=array.dtype, chunks=_chunks(array.shape), overwrite=True)
        z[...] = array
    else:
        import tifffile

        axes = "ZYX"[-array.ndim:]
        if voxel_size_nm is None:
            tifffile.imwrite(path, array, compression="zlib", photometric="minisblack", metadata={"axes": axes})
            return
        um = dict(zip("ZYX", (v / 1000 for v in voxel_size_nm)))
        tifffile.imwrite(path, array, compression="zlib", photometric="minisblack", ome=True,
                         metadata={"axes": axes, **{f"PhysicalSize{ax}": um[ax] for ax in axes}})


def _chunks(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(min(s, c) for s, c in zip(shape, (8, 512, 512)[-len(shape) :]))


def _parse_slices(text: str | None) -> slice | None:
    if not text:
        return None
    a, sep, b = text.partition(":")
    if not sep:
        raise ValueError(f"--slices {text!r} is not a:b")
    return slice(int(a) if a else None, int(b) if b else None)


def _parse_hierarchy(text: str | None) -> dict[str, str | None] | None:
    if not text:
        return None
    out: dict[str, str | None] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        child, sep, parent = item.partition("=")
        if not sep:
            raise ValueError(f"hierarchy item {item!r} is not CHILD=PARENT")
        out[child.strip()] = parent.strip() or None
    return out


def _out_folder_exists(path: str) -> None:
    """Refuse an output in a missing folder before any work (train found out after training)."""
    folder = Path(path).expanduser().resolve().parent
    if not folder.is_dir():
        raise ValueError(f"--out {path!r}: the folder {str(folder)!r} does not exist")


def add_quiet(parser: argparse.ArgumentParser) -> None:
    """The progress flag every subcommand shares: progress goes to stderr unless ``--quiet``."""
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def _ints(text: str | None) -> list[int]:
    return [int(s) for s in text.split(",") if s.strip()] if text else []


# ----------------------------------------------------------------------------- commands
_SAVE_SECONDS = 1.0  # kept back from --minutes for writing the model file


def _train(args: argparse.Namespace) -> int:
    started = getattr(args, "started", None) or time.perf_counter()  # --minutes is the whole run, loading and saving too
    from segmentation.core.classes import ClassSpec, parse_classes
    from segmentation.core.defaults import defaults_meta, training_defaults
    from segmentation.core.modelfile import labels_digest, save_model
    from segmentation.core.training import train

    _out_folder_exists(args.out)
    image = read_volume(args.image, lazy=True)
    labels = read_volume(args.labels, lazy=True)
    spec = ClassSpec.build(parse_classes(args.classes), _parse_hierarchy(args.hierarchy), descendants=args.descendants)
    voxel_size = args.voxel_size_nm or _voxel_size_of(args.image)
    defaults = training_defaults(voxel_size, args.device)
    # explicit flags override the defaults; the rest is what the voxel size and device call for
    chosen = {key: value for key, value in (("patch", args.patch), ("batch", args.batch), ("in_slices", args.context),
                                            ("scale", args.scale)) if value is not None}
    config = defaults.config(finetune=args.init is not None,  # keeps its last weights, as the app's Retrain
                             base_width=args.width, depth=args.depth, max_steps=args.max_steps, lr=args.lr, **chosen)
    if not args.quiet:
        print(f"defaults: {defaults.reason}; patch {config.patch}, batch {config.batch}, input slices {config.in_slices}"
              f"{' (flags: ' + ', '.join(chosen) + ')' if chosen else ''}"
              f"{'; fine-tuning keeps the scale and input slices of --init' if args.init else ''}", file=sys.stderr)
    result = train(
        image, labels, classes=spec, minutes=args.minutes, device=args.device, init=args.init, seed=args.seed,
        complete_slices=_ints(args.complete_slices), config=config, progress_bar=not args.quiet,
        deadline=started + args.minutes * 60.0 - _SAVE_SECONDS,
    )
    result.model.meta.update(defaults_meta(defaults, voxel_size_nm=voxel_size, overrides=chosen))
    # what the model saw, so a copy of it elsewhere still names its training labels
    result.model.meta["provenance"] = {"labels_sha256": labels_digest(labels), "labels": Path(args.labels).name,
                                       "image": Path(args.image).name}
    save_model(args.out, result.model)
    summary = {
        "out": args.out, "steps": result.steps, "stopped": result.stopped,
        "seconds": round(time.perf_counter() - started, 1),
        "train_slices": result.train_slices, "val_slices": result.val_slices, "val_dice": result.val_dice,
        "scale": result.model.scale, "patch": result.meta.get("patch"), "batch": result.meta.get("batch"),
        "context": result.model.config.in_slices, "tta": result.model.meta["tta"],
    }
    print(json.dumps(summary))
    return 0


def _predict(args: argparse.Namespace) -> int:
    from segmentation.core.inference import PostProcess, predict_volume
    from segmentation.core.modelfile import load_model, prediction_tta, resolve_device

    _out_folder_exists(args.out)
    image = read_volume(args.image, lazy=True)
    model = load_model(args.model, device=resolve_device(args.device))
    block = (args.block[0], args.block[1], args.block[2])
    post = None if args.no_postprocess else PostProcess()
    tta = prediction_tta(model) if args.tta is None else args.tta  # what the model was trained for, unless told
    kwargs = dict(block=block, window=args.window, overlap=args.overlap, tta=tta, device=args.device, postprocess=post, progress_bar=not args.quiet)
    if args.voxel_size_nm is not None and min(args.voxel_size_nm) <= 0:
        raise ValueError(f"--voxel-size-nm must be positive, got {args.voxel_size_nm}")
    voxel_size = tuple(args.voxel_size_nm) if args.voxel_size_nm else _voxel_size_of(args.image)
    if _is_zarr(args.out):
        if voxel_size is None:
            raise ValueError(f"--out {args.out!r}: an OME-Zarr states its voxel size, and {args.image!r} states none; "
                             "pass --voxel-size-nm Z Y X")
        _predict_to_ome_zarr(Path(args.out), args.image, model, voxel_size, lambda out: predict_volume(
            model, image, out=out, **kwargs))
    else:
        labels = predict_volume(model, image, **kwargs)
        _write_volume(args.out, np.asarray(labels), voxel_size_nm=voxel_size)
    return 0


def _predict_to_ome_zarr(dest: Path, image_path: str, model: Any, voxel_size: tuple[float, ...],
                         predict_into: Any) -> None:
    """The image as an OME-Zarr (NGFF 0.4) pyramid with the prediction as its label layer
    ``labels/prediction`` (class names in the NGFF properties), written beside ``dest`` and
    renamed onto it only when complete; an existing zarr at ``dest`` is replaced then."""
    import shutil
    import uuid

    from annotations.imaging import omezarr
    from annotations.imaging.readers import open_source

    if dest.exists() and not _is_zarr(str(dest)):
        raise ValueError(f"--out {str(dest)!r} exists and is not a zarr store; not replacing it")
    tmp = dest.parent / f".{dest.name}.partial-{uuid.uuid4().hex[:12]}"
    try:
        with open_source(Path(image_path)) as source:
            omezarr.write_pyramid(source, tmp, voxel_size_nm=voxel_size, name=Path(image_path).name)
        values = model.classes.values
        omezarr.create_label_layer(tmp, LayerName.PREDICTION, dtype="uint8" if max(values.values()) < 256 else "uint16",
                                   properties={v: {"name": name} for name, v in values.items()})
        predict_into(omezarr.open_label_level(tmp, LayerName.PREDICTION, 0, mode="r+"))
        _label_pyramid_blockwise(tmp, LayerName.PREDICTION)
        if dest.exists():
            old = dest.parent / f".{dest.name}.old-{uuid.uuid4().hex[:12]}"
            dest.rename(old)
            tmp.rename(dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _label_pyramid_blockwise(dest: Path, name: str, *, step: tuple[int, int, int] = (8, 2048, 2048)) -> None:
    """Coarser levels of a label layer from its level 0, a region at a time (memory: one region)."""
    from annotations.imaging import omezarr

    nz, ny, nx = omezarr.label_regions(dest, name)[0].shape
    for z0 in range(0, nz, step[0]):
        for y0 in range(0, ny, step[1]):
            for x0 in range(0, nx, step[2]):
                omezarr.update_label_pyramid(dest, name, z=(z0, min(nz, z0 + step[0])),
                                             y=(y0, min(ny, y0 + step[1])), x=(x0, min(nx, x0 + step[2])))


def _export(args: argparse.Namespace) -> int:
    from segmentation.core.modelfile import export_onnx, load_model

    _out_folder_exists(args.onnx)
    model = load_model(args.model)
    export_onnx(model, args.onnx)
    print(json.dumps({"onnx": args.onnx, "heads": list(model.classes.heads), "scale": model.scale,
                      "in_slices": model.config.in_slices, "divisor": model.config.divisor,
                      "provenance": model.meta.get("provenance", {})}))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from segmentation.core.classes import parse_classes
    from segmentation.core.metrics import dice_iou, instance_dice

    pred = np.asarray(read_volume(args.pred))
    truth = np.asarray(read_volume(args.truth))
    sl = _parse_slices(args.slices)
    if args.instances:
        if sl is not None:
            pred, truth = pred[sl], truth[sl]
        res = instance_dice(pred, truth)
        out: Any = {
            "cells": {str(k): v for k, v in res["cells"].items()},
            "mean": res["mean"],
            "matched": {str(k): v for k, v in res["matched"].items()},
        }
    else:
        if args.classes:
            classes = parse_classes(args.classes)
        else:
            values = sorted(set(np.unique(truth).tolist()) - {0})
            classes = {str(v): int(v) for v in values}
        res2 = dice_iou(pred, truth, classes=classes, slices=sl, hierarchy=_parse_hierarchy(args.hierarchy), ignore=args.ignore)
        # dice_iou scores a class absent from both as 1.0; asked for by name, that is a mistake (a typo'd value)
        absent = [f"{name}={classes[name]}" for name, r in res2.items() if r["truth_voxels"] == 0 and r["pred_voxels"] == 0]
        if absent:
            where = " in the scored voxels" if sl is not None or args.ignore is not None else ""
            raise ValueError(f"class {', '.join(absent)} is in neither --pred nor --truth{where}: nothing to score")
        out = {name: {"dice": r["dice"], "iou": r["iou"]} for name, r in res2.items()}
    print(json.dumps(out))
    return 0


def _suggest(args: argparse.Namespace) -> int:
    from segmentation.core.active import suggest_regions

    if args.voxel_size_nm and min(args.voxel_size_nm) <= 0:
        raise ValueError(f"--voxel-size-nm must be positive, got {args.voxel_size_nm}")
    image = read_volume(args.image, lazy=True)
    labels = read_volume(args.labels, lazy=True) if args.labels else None
    regions = suggest_regions(
        args.model, image, labels=labels, k=args.k, tile=args.tile, per_class=args.per_class, tta=not args.no_tta,
        z_spacing=args.voxel_size_nm[0] / args.voxel_size_nm[2] if args.voxel_size_nm else 1.0,
        device=args.device, progress_bar=not args.quiet,
    )
    print(json.dumps([r.to_dict() for r in regions]))
    return 0


# ----------------------------------------------------------------------------- parser
_DEVICE_HELP = "auto: CUDA when available, else the CPU (default auto)"

def register(subparsers: Any) -> None:
    """Add the ``train``, ``predict``, ``evaluate`` and ``suggest`` subcommands."""
    p = subparsers.add_parser("train", help="train a ResUNet on sparse labels (0 = unlabeled)")
    p.add_argument("--image", required=True, help="image volume (TIFF ZYX or zarr)")
    p.add_argument("--labels", required=True, help="sparse labels, same shape; 0 = unlabeled")
    p.add_argument("--out", required=True, help="model file to write (.pt)")
    p.add_argument("--classes", default="background=1,mitochondrion=2", help="NAME=VALUE,... (default %(default)s)")
    p.add_argument("--hierarchy", help="CHILD=PARENT,... (default: the paper's nesting for known names)")
    p.add_argument("--descendants", choices=("negative", "ignore"), default="negative",
                   help="what painting a class means for its sub-classes' heads")
    p.add_argument("--minutes", type=float, default=10.0,
                   help="wall-time budget of the whole command, loading and saving included (default %(default)s)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help=_DEVICE_HELP)
    p.add_argument("--init", help="model file to fine-tune from")
    p.add_argument("--seed", type=int, default=0, help="seed of numpy, torch and the patch sampler (default %(default)s)")
    p.add_argument("--complete-slices", help="Z indices (a,b,...) whose unpainted voxels are background")
    p.add_argument("--voxel-size-nm", type=float, nargs=3, metavar=("Z", "Y", "X"),
                   help="voxel size the defaults are chosen for (default: as the image file states it)")
    p.add_argument("--context", type=int, help="input slices: 1 = 2D, 3 or 5 = 2.5D (default: 5 for near-isotropic voxels, else 1)")
    p.add_argument("--width", type=int, default=16, help="feature maps of the first level")
    p.add_argument("--depth", type=int, default=4, help="resolution levels")
    p.add_argument("--patch", type=int, help="patch side in network pixels (default CUDA 256; CPU 96 when downsampled, else 160)")
    p.add_argument("--batch", type=int, help="patches per step (default 4 CPU, 16 CUDA)")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate of AdamW (default %(default)s)")
    p.add_argument("--max-steps", type=int, help="stop after this many optimiser steps, even with time left")
    p.add_argument("--scale", type=int,
                   help="work on the image downsampled by this factor in Y and X (default: from the voxel size, "
                        "network pixels of 9-20 nm on serial sections, 1 on near-isotropic or unknown voxels)")
    add_quiet(p)
    p.set_defaults(func=_train)

    p = subparsers.add_parser("predict", help="segment a volume block by block")
    p.add_argument("--model", required=True, help="model file written by train (.pt)")
    p.add_argument("--image", required=True, help="image volume (TIFF ZYX or zarr)")
    p.add_argument("--out", required=True,
                   help="label volume: a TIFF (OME-TIFF in µm when the voxel size is known), or a .zarr: an OME-Zarr "
                        "image with the prediction as its label layer labels/prediction, written block by block")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help=_DEVICE_HELP)
    p.add_argument("--block", type=int, nargs=3, default=(8, 1024, 1024), metavar=("Z", "Y", "X"),
                   help="voxels read and written at a time (default %(default)s)")
    p.add_argument("--window", type=int, default=512, help="side of the network's sliding window (default %(default)s)")
    p.add_argument("--overlap", type=int, default=32, help="overlap of neighbouring windows in pixels (default %(default)s)")
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                   help="average over flips (4x slower; default: as the model was trained for)")
    p.add_argument("--no-postprocess", action="store_true",
                   help="skip the clean-up of the predicted masks (hole filling, small-object removal)")
    p.add_argument("--voxel-size-nm", type=float, nargs=3, metavar=("Z", "Y", "X"),
                   help="voxel size written into the output (default: the image's own; a .zarr output needs one)")
    add_quiet(p)
    p.set_defaults(func=_predict)

    p = subparsers.add_parser("export", help="write a model as ONNX for inference elsewhere; prints JSON")
    p.add_argument("--model", required=True, help="model file written by train (.pt)")
    p.add_argument("--onnx", required=True,
                   help="ONNX file to write: grey values of the input slices in, per-class probabilities out; "
                        "classes, thresholds, scale and provenance in its metadata")
    p.set_defaults(func=_export)

    p = subparsers.add_parser("evaluate", help="Dice/IoU per class, or per cell with --instances; prints JSON")
    p.add_argument("--pred", required=True, help="predicted label volume (TIFF or zarr)")
    p.add_argument("--truth", required=True, help="true label volume of the same shape")
    p.add_argument("--classes", help="NAME=VALUE,... (default: every nonzero truth value)")
    p.add_argument("--hierarchy", help="CHILD=PARENT,...: a class then includes its sub-classes")
    p.add_argument("--slices", help="Z range a:b to score")
    p.add_argument("--ignore", type=int, help="truth value left out of scoring (e.g. 0 for sparse truth)")
    p.add_argument("--instances", action="store_true", help="per-cell Dice of instance volumes")
    p.set_defaults(func=_evaluate)

    p = subparsers.add_parser("suggest", help="regions to label next (JSON list, best first)")
    p.add_argument("--model", required=True, help="model file written by train (.pt)")
    p.add_argument("--image", required=True, help="image volume (TIFF ZYX or zarr)")
    p.add_argument("--labels", help="current labels; labeled tiles are skipped")
    p.add_argument("--k", type=int, default=4, help="how many regions (default %(default)s)")
    p.add_argument("--tile", type=int, default=256, help="side of a region in pixels (default %(default)s)")
    p.add_argument("--per-class", action="store_true", help="rank each class on its own: --k regions per class")
    p.add_argument("--no-tta", action="store_true", help="entropy only, no flip disagreement")
    p.add_argument("--voxel-size-nm", type=float, nargs=3, metavar=("Z", "Y", "X"),
                   help="spread the regions physically: serial sections count at their thickness (default: isotropic)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help=_DEVICE_HELP)
    add_quiet(p)
    p.set_defaults(func=_suggest)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use python -m segmentation.cli")
