"""Self-supervised pretraining of the ResUNet encoder on unlabeled EM.

A lab has far more unlabeled voxels than painted ones. :func:`pretrain` teaches the same
ResUNet that :func:`~segmentation.core.training.train` fits to reconstruct the image from a
corrupted copy, reading images only (it has no labels argument), and returns the encoder's
weights as a :class:`~segmentation.core.encoder.PretrainedEncoder`; training then starts
from them (``train(..., encoder=...)``).

Objectives (``PretrainConfig.objective``):

* ``"masked"`` (masked-image modelling): square blocks of ``mask_block`` network pixels,
  ``mask_ratio`` of them, are set to mid-grey in every input slice, and the network predicts
  the centre slice's grey values there (mean squared error on the masked pixels only), so it
  must infer membranes and organelles from their surroundings.
* ``"denoise"``: Gaussian noise of ``noise`` (in normalised units, the image spans about 1)
  is added everywhere and the clean centre slice is predicted.

Patches are drawn as training draws them, without reading a whole volume: a random slice
and a random square of ``patch * scale`` pixels, read with its context slices, normalised by
the volume's :class:`~segmentation.core.modelfile.Normalization` and downsampled by
``scale``, then flipped, rotated and jittered in intensity
(:func:`~segmentation.core.sampling.augment`). Several volumes are sampled in proportion to
their voxel counts, each with its own normalisation.
"""
from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import torch

from segmentation.core.encoder import ENCODER_PREFIX, PretrainedEncoder
from segmentation.core.modelfile import Normalization, resolve_device
from segmentation.core.resunet import ResUNet, ResUNetConfig
from segmentation.core.sampling import _pad_to, augment
from segmentation.core.training import (
    TrainConfig,
    TrainProgress,
    _progress,
    _stack,
    _train_mode,
    lr_factor,
    optimizer_step,
)

__all__ = ["PretrainConfig", "pretrain", "image_fingerprint", "corrupt"]


@dataclass(frozen=True)
class PretrainConfig:
    """Pretraining settings; the network and sampling fields match a :class:`TrainConfig`.

    patch, batch : patch side (network pixels) and patches per step; None: 160 / 4 on a CPU,
        256 / 16 on CUDA (as training). in_slices, base_width, depth, scale : the network and
        the XY downsampling, which the later training must share to use the encoder.
    objective : "masked" or "denoise" (module docstring). mask_ratio, mask_block : share of
        blocks masked and their side in network pixels. noise : standard deviation of the
        denoising noise. lr, weight_decay : AdamW. lr_floor : see ``TrainConfig.lr_floor``.
    max_steps : optional cap on steps besides the time budget.
    """

    patch: int | None = None
    batch: int | None = None
    in_slices: int = 1
    base_width: int = 16
    depth: int = 4
    scale: int = 1
    objective: Literal["masked", "denoise"] = "masked"
    mask_ratio: float = 0.5
    mask_block: int = 8
    noise: float = 0.2
    lr: float = 2e-3
    weight_decay: float = 1e-4
    lr_floor: float = 1.0
    augment: bool = True
    max_steps: int | None = None

    @classmethod
    def like(cls, config: TrainConfig, **overrides: Any) -> PretrainConfig:
        """The pretraining that fits ``config``: its patch, batch, network and scale (the training defaults' choice)."""
        base = cls(patch=config.patch, batch=config.batch, in_slices=config.in_slices, base_width=config.base_width,
                   depth=config.depth, scale=config.scale)
        return replace(base, **overrides)


def image_fingerprint(image: Any, *, slices: int = 8, samples: int = 65_536) -> str:
    """SHA-256 of a ZYX image's shape, dtype and a fixed strided sample of its voxels.

    Names the volume in an encoder's provenance without reading it whole: up to ``slices``
    slices spread over Z, each strided to about ``samples / slices`` voxels. Two images with
    the same fingerprint are the same image with near certainty; a change outside the sample
    goes unseen.
    """
    shape = tuple(int(s) for s in image.shape)
    z, y, x = shape
    digest = hashlib.sha256(json.dumps({"shape": shape, "dtype": np.dtype(image.dtype).str}).encode())
    step = max(1, int(np.sqrt(y * x / max(1, samples // slices))))
    for k in np.unique(np.linspace(0, z - 1, min(z, slices)).round().astype(int)):
        digest.update(np.ascontiguousarray(np.asarray(image[int(k), ::step, ::step])).tobytes())
    return digest.hexdigest()


def corrupt(image: np.ndarray, config: PretrainConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The corrupted input and the weight of each pixel in the loss, for one normalised patch.

    image : float32 (in_slices, P, P). Returns the input (same shape) and the weight, float32
    (1, P, P): the masked pixels (``"masked"``) or every pixel (``"denoise"``).
    """
    p = image.shape[-1]
    if config.objective == "denoise":
        noisy = image + rng.normal(0.0, config.noise, image.shape).astype(np.float32)
        return noisy, np.ones((1, *image.shape[-2:]), np.float32)
    if config.objective != "masked":
        raise ValueError(f"objective must be 'masked' or 'denoise', got {config.objective!r}")
    b = config.mask_block
    cells = -(-p // b)
    grid = rng.random((cells, cells)) < config.mask_ratio
    mask = np.kron(grid, np.ones((b, b), bool))[: image.shape[-2], :p]
    return np.where(mask[None], np.float32(0.0), image).astype(np.float32), mask[None].astype(np.float32)


class _Patches:
    """Random normalised patches of one or more volumes, read one square at a time."""

    def __init__(self, images: Sequence[Any], norms: Sequence[Normalization], *, side: int, halo: int, scale: int,
                 rng: np.random.Generator) -> None:
        self.images, self.norms, self.side, self.halo, self.scale, self.rng = images, norms, side, halo, scale, rng
        sizes = np.array([float(np.prod(im.shape)) for im in images])
        self.p = sizes / sizes.sum()

    def sample(self) -> np.ndarray:
        """(in_slices, patch, patch) float32."""
        v = int(self.rng.choice(len(self.images), p=self.p))
        image, full = self.images[v], self.side * self.scale
        depth, h, w = (int(s) for s in image.shape)
        z = int(self.rng.integers(depth))
        y0 = int(self.rng.integers(max(h - full, 0) + 1)) // self.scale * self.scale
        x0 = int(self.rng.integers(max(w - full, 0) + 1)) // self.scale * self.scale
        stack = _stack(image, z, (y0, min(h, y0 + full), x0, min(w, x0 + full)), self.halo, self.norms[v], self.scale)
        return _pad_to(stack, self.side)


def pretrain(
    images: Sequence[Any],
    *,
    names: Sequence[str] | None = None,
    config: PretrainConfig = PretrainConfig(),
    minutes: float = 5.0,
    device: str = "auto",
    seed: int = 0,
    on_progress: Callable[[TrainProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> PretrainedEncoder:
    """Pretrain a ResUNet encoder on the voxels of ``images``, without labels, for at most ``minutes``.

    Parameters
    ----------
    images : array-likes of shape (Z, Y, X), numeric (numpy, zarr, ...); only patches are read.
    names : one name per image for the provenance (default ``"0"``, ``"1"``, ...).
    config : :class:`PretrainConfig` (``PretrainConfig.like(train_config)`` to match a training).
    minutes : wall-clock budget of the optimisation loop.
    device : "auto", "cpu" or "cuda" (AMP on CUDA).
    seed : seeds numpy, torch and python's random.
    on_progress : called about every ``minutes * 4`` seconds with the step and the mean loss
        (``val_dice`` None). should_stop : polled every step; True ends the loop early.

    Returns
    -------
    PretrainedEncoder
        ``meta`` holds ``objective``, ``steps``, ``seconds``, ``stopped`` ("budget", "max_steps"
        or "cancelled"), ``loss_first`` / ``loss_last`` (mean loss over the first and last tenth
        of the steps), the settings, and ``sources``: per image its name, shape, fingerprint
        (:func:`image_fingerprint`) and normalisation.

    Examples
    --------
    >>> enc = pretrain([image], names=["volume 3"], minutes=4)  # doctest: +SKIP
    >>> result = train(image, labels, classes=..., encoder=enc)  # doctest: +SKIP
    """
    t_start = time.perf_counter()
    images = [np.asarray(im)[None] if len(im.shape) == 2 else im for im in images]
    if not images or any(len(im.shape) != 3 for im in images):
        raise ValueError("images must be one or more (Z, Y, X) arrays")
    names = [str(n) for n in names] if names is not None else [str(i) for i in range(len(images))]
    if len(names) != len(images):
        raise ValueError(f"{len(names)} names for {len(images)} images")
    if minutes <= 0:
        raise ValueError(f"minutes must be positive, got {minutes}")
    if config.scale < 1:
        raise ValueError(f"scale must be >= 1, got {config.scale}")
    if not 0.0 < config.mask_ratio < 1.0 or config.mask_block < 1:
        raise ValueError(f"mask_ratio must lie in (0, 1) and mask_block be >= 1, got {config.mask_ratio}, {config.mask_block}")
    dev = resolve_device(device)
    cuda = dev.type == "cuda"
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net_config = ResUNetConfig(config.in_slices, 1, config.base_width, config.depth)
    patch = -(-(config.patch or (256 if cuda else 160)) // net_config.divisor) * net_config.divisor
    batch = config.batch or (16 if cuda else 4)
    norms = [Normalization.measure(im, seed=seed) for im in images]
    patches = _Patches(images, norms, side=patch, halo=config.in_slices // 2, scale=config.scale, rng=rng)
    net = ResUNet(net_config).to(dev)
    _train_mode(net, freeze_norm=False)
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=cuda)
    budget, halo = minutes * 60.0, config.in_slices // 2
    report_every = max(5.0, min(60.0, budget / 15.0))
    losses: list[float] = []
    step, stopped, loop_start = 0, "budget", time.perf_counter()
    last_report = loop_start
    while True:
        if should_stop is not None and should_stop():
            stopped = "cancelled"
            break
        for group in opt.param_groups:
            group["lr"] = config.lr * lr_factor(_progress(step, time.perf_counter() - loop_start, budget, config.max_steps),
                                                config.lr_floor)
        clean = [patches.sample() for _ in range(batch)]
        if config.augment:
            none = np.zeros((0, patch, patch), np.float32)
            clean = [augment(c, none, none, rng=rng)[0] for c in clean]
        pairs = [corrupt(c, config, rng) for c in clean]
        x = torch.from_numpy(np.stack([p[0] for p in pairs])).to(dev)
        w = torch.from_numpy(np.stack([p[1] for p in pairs])).to(dev)
        t = torch.from_numpy(np.stack([c[halo : halo + 1] for c in clean])).to(dev)
        with torch.autocast(dev.type, dtype=torch.float16, enabled=cuda):
            out = net(x)
        losses.append(optimizer_step(opt, scaler, (w * (out.float() - t) ** 2).sum() / w.sum().clamp_min(1.0)))
        step += 1
        now = time.perf_counter()
        if config.max_steps is not None and step >= config.max_steps:
            stopped = "max_steps"
            break
        if now - loop_start >= budget:
            break
        if on_progress is not None and now - last_report >= report_every:
            last_report = now
            elapsed = now - loop_start
            on_progress(TrainProgress(step, elapsed, max(0.0, budget - elapsed), float(np.mean(losses[-50:])), None, None))
    net.eval()
    tenth = max(1, step // 10)
    state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items() if k.startswith(ENCODER_PREFIX)}
    meta: dict[str, Any] = {
        "objective": config.objective, "steps": step, "stopped": stopped, "minutes": minutes, "seed": seed,
        "seconds": round(time.perf_counter() - t_start, 2), "device": str(dev), "patch": patch, "batch": batch,
        "scale": config.scale, "in_slices": config.in_slices, "mask_ratio": config.mask_ratio,
        "mask_block": config.mask_block, "noise": config.noise,
        "loss_first": float(np.mean(losses[:tenth])), "loss_last": float(np.mean(losses[-tenth:])),
        "sources": [_source(name, im, norm) for name, im, norm in zip(names, images, norms)],
    }
    return PretrainedEncoder(state, net_config, config.scale, meta)


def _source(name: str, image: Any, norm: Normalization) -> Mapping[str, Any]:
    return {"name": name, "shape": [int(s) for s in image.shape], "fingerprint": image_fingerprint(image),
            "normalization": {"lo": norm.lo, "hi": norm.hi}}
