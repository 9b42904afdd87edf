"""A trained model on disk: weights plus everything needed to predict the same way.

One ``.pt`` file (``torch.save`` of plain containers, loadable with ``weights_only=True``)
holding the state dict, the :class:`~segmentation.core.resunet.ResUNetConfig`, the
:class:`~segmentation.core.classes.ClassSpec`, the intensity normalisation measured on
the training image, and training metadata (curve, validation Dice, seed, budget).

Metadata a prediction reads (``meta``): ``thresholds`` and ``z_blend`` per head (calibration),
``min_object_px`` and ``object_floor_px`` (post-processing), ``tta`` (flip averaging by default, :func:`prediction_tta`).
What training used and why: ``scale``, ``patch``, ``batch``, ``in_slices``, ``augment``,
``elastic``, ``ema``, and ``defaults`` / ``overrides`` / ``voxel_size_nm``
(:func:`segmentation.core.defaults.defaults_meta`). ``provenance`` says what the model saw:
``labels_sha256`` (:func:`labels_digest` of its training labels) and where it came from.

A model file travels as it is: another install loads it with :func:`load_model`. For
inference without this code, :func:`export_onnx` writes the network as ONNX with the
normalisation and the sigmoid inside and the classes, thresholds and scale as metadata.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from segmentation.core.classes import ClassSpec
from segmentation.core.resunet import ResUNet, ResUNetConfig

__all__ = ["Normalization", "TrainedModel", "save_model", "load_model", "resolve_device", "prediction_tta", "FORMAT",
           "labels_digest", "export_onnx", "ONNX_INPUT", "ONNX_OUTPUT"]

FORMAT = "emportal-resunet/1"


@dataclass(frozen=True)
class Normalization:
    """Percentile intensity normalisation: ``(x - lo) / (hi - lo) - 0.5``, clipped.

    lo, hi : grey values at the ``low``/``high`` percentiles of the training image.
    """

    lo: float
    hi: float
    low: float = 1.0
    high: float = 99.0

    @classmethod
    def measure(cls, image: Any, *, low: float = 1.0, high: float = 99.0, max_samples: int = 2_000_000, seed: int = 0) -> Normalization:
        """Measure percentiles on (a sample of) an array-like ZYX image.

        Reads at most a bounded number of voxels: whole slices spread over Z, each
        strided in YX, so a large zarr volume is never loaded whole.
        """
        shape = tuple(image.shape)
        if len(shape) == 2:
            shape = (1, *shape)
            image = np.asarray(image)[None]
        z, y, x = shape
        n_slices = min(z, 16)
        zs = np.unique(np.linspace(0, z - 1, n_slices).round().astype(int))
        per_slice = max(1, max_samples // len(zs))
        step = max(1, int(np.sqrt(y * x / per_slice)))
        values = np.concatenate([np.asarray(image[int(k), ::step, ::step], np.float32).ravel() for k in zs])
        lo, hi = np.percentile(values, [low, high])
        if not np.isfinite(lo) or not np.isfinite(hi):
            raise ValueError(f"image holds non-finite values (percentiles {lo}, {hi})")
        if hi <= lo:
            hi = lo + 1.0
        return cls(lo=float(lo), hi=float(hi), low=low, high=high)

    def apply(self, array: np.ndarray) -> np.ndarray:
        """Normalised float32 copy of ``array`` (any shape)."""
        a = (np.asarray(array, np.float32) - self.lo) / (self.hi - self.lo) - 0.5
        return np.clip(a, -1.5, 1.5, out=a)


@dataclass
class TrainedModel:
    """A network with its classes, normalisation and training metadata."""

    net: ResUNet
    config: ResUNetConfig
    classes: ClassSpec
    normalization: Normalization
    meta: dict[str, Any] = field(default_factory=dict)
    scale: int = 1
    """The network sees the image downsampled by this factor in Y and X (mean of scale x scale)."""

    @property
    def halo(self) -> int:
        """Z slices needed on each side of a predicted slice (2.5D context)."""
        return self.config.in_slices // 2


def save_model(path: str | os.PathLike[str], model: TrainedModel) -> Path:
    """Write ``model`` to ``path`` atomically (temporary file, then rename)."""
    path = Path(path)
    payload = {
        "format": FORMAT,
        "state_dict": {k: v.detach().cpu() for k, v in model.net.state_dict().items()},
        "config": model.config.to_dict(),
        "classes": model.classes.to_dict(),
        "normalization": asdict(model.normalization),
        "scale": int(model.scale),
        "meta": _plain(model.meta),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_model(source: str | os.PathLike[str] | TrainedModel | Mapping[str, Any], *, device: str | torch.device = "cpu") -> TrainedModel:
    """Load a model file (or pass a :class:`TrainedModel` through), in eval mode on ``device``."""
    if isinstance(source, TrainedModel):
        source.net.to(device).eval()
        return source
    if isinstance(source, Mapping):
        payload = source
    else:
        p = Path(source)
        if not p.is_file():
            raise FileNotFoundError(f"model file {str(p)!r} does not exist")
        try:
            payload = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - torch raises UnpicklingError, KeyError, EOFError, RuntimeError... by content
            raise ValueError(f"{str(p)!r} is not an {FORMAT} model file (torch cannot read it: "
                             f"{type(exc).__name__})") from None
    if not isinstance(payload, Mapping) or payload.get("format") != FORMAT:
        raise ValueError(f"{source!r} is not an {FORMAT} model file")
    try:
        config = ResUNetConfig.from_dict(dict(payload["config"]))
        net = ResUNet(config)
        net.load_state_dict(payload["state_dict"])
        classes = ClassSpec.from_dict(payload["classes"])
        normalization = Normalization(**payload["normalization"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{source!r} is a damaged {FORMAT} model file ({type(exc).__name__}: {exc})") from None
    net.to(device).eval()
    return TrainedModel(
        net=net,
        config=config,
        classes=classes,
        normalization=normalization,
        meta=dict(payload.get("meta", {})),
        scale=int(payload.get("scale", 1)),
    )


def prediction_tta(model: TrainedModel) -> bool:
    """Whether prediction with ``model`` averages the four flips unless told otherwise: what its
    training recorded (``meta["tta"]``); files written before that was recorded say no."""
    return bool(model.meta.get("tta", False))


def _plain(value: Any) -> Any:
    """Metadata as plain Python containers so ``weights_only`` loading accepts it."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; ``"cuda"`` without CUDA is an error."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    if device != "cpu" and not device.startswith("cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    return torch.device(device)


def labels_digest(labels: Any, *, slab: int = 16) -> str:
    """SHA-256 of a ZYX label volume's shape, dtype and voxels, read ``slab`` slices at a time.

    The same labels give the same digest whatever the container (numpy, zarr, TIFF), so a
    model's ``provenance.labels_sha256`` names the labels it saw.
    """
    shape = tuple(int(s) for s in labels.shape)
    dtype = np.dtype(labels.dtype)
    digest = hashlib.sha256(json.dumps({"shape": shape, "dtype": dtype.str}).encode())
    for z0 in range(0, shape[0] if shape else 0, slab):
        digest.update(np.ascontiguousarray(np.asarray(labels[z0 : z0 + slab], dtype=dtype)).tobytes())
    return digest.hexdigest()


ONNX_INPUT = "image"
ONNX_OUTPUT = "probabilities"


class _Probabilities(torch.nn.Module):
    """Grey values in, per-head probabilities out: the normalisation and the sigmoid of a prediction."""

    def __init__(self, model: TrainedModel) -> None:
        super().__init__()
        self.net = model.net
        self.lo, self.span = float(model.normalization.lo), float(model.normalization.hi - model.normalization.lo)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(torch.clamp((x - self.lo) / self.span - 0.5, -1.5, 1.5)))


def export_onnx(model: TrainedModel, path: str | os.PathLike[str], *, opset: int = 17) -> Path:
    """Write ``model`` as an ONNX graph for inference elsewhere (onnxruntime, Triton, ...).

    Input ``image``: float32 ``(N, in_slices, H, W)`` grey values of ``in_slices``
    consecutive slices centred on the predicted one, downsampled by ``scale`` (mean), H and
    W multiples of ``divisor``. Output ``probabilities``: float32 ``(N, heads, H, W)``, one
    sigmoid per head. The metadata (``metadata_props``, JSON values) carries ``classes``
    (names, values, hierarchy), ``heads``, ``thresholds``, ``scale``, ``in_slices``,
    ``divisor``, ``normalization`` and ``provenance``. A voxel's class is the deepest head
    above its threshold, as :func:`segmentation.core.inference.predict_volume` does.
    """
    import warnings

    import onnx

    path = Path(path)
    wrapper = _Probabilities(model).cpu().eval()
    cfg = model.config
    example = torch.zeros(1, cfg.in_slices, cfg.divisor * 2, cfg.divisor * 2)
    tmp = path.with_name(path.name + ".tmp")
    dims = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter: the dynamo one needs onnxscript and gives the same graph here.
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, (example,), str(tmp), dynamo=False, opset_version=opset,
                          input_names=[ONNX_INPUT], output_names=[ONNX_OUTPUT],
                          dynamic_axes={ONNX_INPUT: dims, ONNX_OUTPUT: dims})
    graph = onnx.load(str(tmp))
    meta = {
        "format": FORMAT,
        "classes": model.classes.to_dict(),
        "heads": list(model.classes.heads),
        "thresholds": model.meta.get("thresholds", {}),
        "scale": int(model.scale),
        "in_slices": cfg.in_slices,
        "divisor": cfg.divisor,
        "normalization": asdict(model.normalization),
        "provenance": model.meta.get("provenance", {}),
    }
    for key, value in meta.items():
        graph.metadata_props.add(key=key, value=json.dumps(_plain(value)))
    onnx.checker.check_model(graph)
    onnx.save(graph, str(tmp))
    os.replace(tmp, path)
    return path
