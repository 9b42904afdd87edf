"""The training and prediction settings a user gets without flags: the measured best.

One pure function, :func:`training_defaults`, picks them from the voxel size and the device;
``python -m segmentation.cli train``, the app's Retrain and the accuracy benchmarks all call
it, and the choice is recorded in the model file (``meta["defaults"]``, ``meta["tta"]``) so
that prediction applies what the model was trained for.

Where each choice comes from (docs/ACCURACY.md):

* **Scale** (XY downsampling). On serial sections (Z much thicker than the pixel) half
  resolution beat full resolution on every data set measured at the same budget: ssTEM
  4.6 nm pixels 0.828 vs 0.797, SBEM 5.9 nm 0.827 vs 0.807, HeLa SBF-SEM 10 nm 0.749 vs
  0.541 (H200, 2 minutes each), and every headline figure is at half resolution.
  So the network should see pixels between :data:`MIN_PIXEL_NM` (9 nm, the finest that
  measured well: 2 x 4.6) and :data:`MAX_PIXEL_NM` (20 nm, the coarsest: 2 x 10): the
  smallest scale reaching 9 nm, and at least 2 while 2 x the pixel stays within 20 nm.
  Coarser pixels (over 20 nm) are used as they are. Near-isotropic voxels (FIB-SEM) keep
  full resolution: the only isotropic data measured is the phantom, at scale 1 with five
  input slices, and shrinking XY alone would break the isotropy those slices rely on.
* **Patch and batch.** CPU: 4 patches of 96² at half resolution or coarser (on all three
  sets: 0.852-0.859 SBEM, 0.851 ssTEM, 0.789-0.803 HeLa in 10 minutes, against
  0.737 with 160² in 5), 4 of 160² at full resolution (the phantom's figures). CUDA: 16 of
  256² (every GPU figure, all sets and the phantom).
* **Context slices**: :func:`~segmentation.core.training.context_slices` (five for isotropic
  voxels, one for serial sections).
* **Augmentation**: flips, rotations and the basic intensity jitter on; elastic off (it did not
  help on the SBEM crop or the phantom); the EM-strength intensity augmentation
  (``intensity="em"``: gamma, blur, stronger noise, brightness ramps) off: at 700 CPU steps it
  lowered Dice on the unseen regions (SBEM 0.823 -> 0.765, HeLa 0.727 -> 0.566, two seeds each)
  and next to the labels (0.844 -> 0.811, 0.666 -> 0.564).
* **Weight average** (EMA 0.99): on; every headline figure uses it.
* **TTA** at prediction: on; every headline figure averages the four flips.
* **Fine-tunes keep their last weights** (no validation gate): see :meth:`TrainingDefaults.config`.

Without a known voxel size the scale stays 1 and the input one slice (nothing is assumed
about the sample); the device still sizes patch and batch.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch

from segmentation.core.modelfile import resolve_device
from segmentation.core.training import TrainConfig, context_slices

__all__ = ["TrainingDefaults", "training_defaults", "defaults_meta", "MIN_PIXEL_NM", "MAX_PIXEL_NM", "MAX_SCALE"]

#: Finest network pixel (nm) that measured better than full resolution (ssTEM at 2 x 4.6 nm).
MIN_PIXEL_NM = 9.0
#: Coarsest network pixel (nm) measured, and better than full resolution (HeLa at 2 x 10 nm).
MAX_PIXEL_NM = 20.0
#: Largest scale chosen (the app accepts 1-4).
MAX_SCALE = 4


@dataclass(frozen=True)
class TrainingDefaults:
    """Settings chosen for a volume and a device (see the module docstring for why).

    scale : XY downsampling the network works at. patch, batch : patch side in network pixels
    and patches per step. context_slices : input slices (1 = 2D). augment, elastic, intensity, ema : see
    :class:`~segmentation.core.training.TrainConfig`. tta : prediction averages the four flips.
    voxel_size_nm : ZYX voxel size they were chosen for (None: unknown). device : "cpu" or "cuda".
    reason : one line saying why, for logs and the model version.
    """

    scale: int
    patch: int
    batch: int
    context_slices: int
    augment: bool
    elastic: float
    intensity: str
    ema: float
    tta: bool
    voxel_size_nm: tuple[float, float, float] | None
    device: str
    reason: str

    def config(self, *, finetune: bool = False, **overrides: Any) -> TrainConfig:
        """The :class:`TrainConfig` of these settings, with ``overrides`` (explicit choices) on top.

        ``finetune``: the config of a fine-tune (training from an earlier model on its labels
        plus newly painted ones), which keeps its last weights instead of the ones that scored best
        on the held-out slice (``select_best=False``): one held-out slice cannot judge a few new
        tiles, and with the gate most correction rounds returned the model they started from
        (docs/ACCURACY.md, "What each training and prediction option bought").
        """
        base = TrainConfig(patch=self.patch, batch=self.batch, in_slices=self.context_slices, scale=self.scale,
                           augment=self.augment, elastic=self.elastic, intensity=self.intensity, ema=self.ema,
                           select_best=not finetune)
        return replace(base, **overrides)

    def to_dict(self) -> dict[str, Any]:
        """Plain values, for a model file's metadata and a model version's config."""
        out = asdict(self)
        out["voxel_size_nm"] = list(self.voxel_size_nm) if self.voxel_size_nm is not None else None
        return out


def _scale(voxel_size_nm: tuple[float, float, float], slices: int) -> tuple[int, str]:
    z, y, x = voxel_size_nm
    xy = min(y, x)
    if slices > 1:
        return 1, f"near-isotropic voxels ({z:g} x {xy:g} nm): full resolution, {slices} input slices"
    finest = math.ceil(MIN_PIXEL_NM / xy - 1e-9)
    half = min(2, math.floor(MAX_PIXEL_NM / xy + 1e-9))
    scale = max(1, min(MAX_SCALE, max(finest, half)))
    return scale, f"serial sections ({z:g} nm) of {xy:g} nm pixels: network pixel {scale * xy:g} nm (scale {scale})"


def training_defaults(voxel_size_nm: Sequence[float] | None, device: str | torch.device = "cpu") -> TrainingDefaults:
    """The measured-best training and prediction settings for a volume of ``voxel_size_nm`` on ``device``.

    Parameters
    ----------
    voxel_size_nm : (z, y, x) in nanometres, or None when the volume does not state it.
    device : "cpu", "cuda", "auto" (CUDA when available) or a torch device.

    Returns
    -------
    TrainingDefaults

    Examples
    --------
    >>> d = training_defaults((40.0, 5.9, 5.9), "cpu")
    >>> d.scale, d.patch, d.batch, d.context_slices, d.tta
    (2, 96, 4, 1, True)
    >>> training_defaults((5.0, 5.0, 5.0), "cpu").scale
    1
    """
    dev = resolve_device(device).type if not isinstance(device, torch.device) else device.type
    if dev not in ("cpu", "cuda"):
        raise ValueError(f"device must be cpu or cuda, got {device!r}")
    size: tuple[float, float, float] | None = None
    if voxel_size_nm is not None:
        values = tuple(float(v) for v in voxel_size_nm)
        if len(values) != 3 or not all(math.isfinite(v) and v > 0 for v in values):
            raise ValueError(f"voxel_size_nm {tuple(voxel_size_nm)} must be three positive numbers (z, y, x nm)")
        size = (values[0], values[1], values[2])
    if size is None:
        scale, slices, reason = 1, 1, "voxel size unknown: full resolution, one input slice"
    else:
        slices = context_slices(size)
        scale, reason = _scale(size, slices)
    cuda = dev == "cuda"
    patch = 256 if cuda else (96 if scale >= 2 else 160)
    return TrainingDefaults(scale=scale, patch=patch, batch=16 if cuda else 4, context_slices=slices, augment=True,
                            elastic=0.0, intensity="basic", ema=0.99, tta=True, voxel_size_nm=size, device=dev,
                            reason=reason)


def defaults_meta(defaults: TrainingDefaults, *, voxel_size_nm: Sequence[float] | None = None,
                  overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What a model file records of the choice: ``meta["defaults"]`` (the settings and why),
    ``meta["overrides"]`` (explicit choices that replaced some of them), ``meta["tta"]`` (whether
    prediction averages flips unless told otherwise, see
    :func:`~segmentation.core.modelfile.prediction_tta`) and ``meta["voxel_size_nm"]``."""
    size = voxel_size_nm if voxel_size_nm is not None else defaults.voxel_size_nm
    return {"defaults": defaults.to_dict(), "overrides": dict(overrides or {}), "tta": bool(defaults.tta),
            "voxel_size_nm": [float(v) for v in size] if size is not None else None}
