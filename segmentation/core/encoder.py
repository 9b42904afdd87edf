"""A pretrained ResUNet encoder on disk: weights learned without labels, and what they were learned from.

:func:`segmentation.core.pretrain.pretrain` makes one; :func:`segmentation.core.training.train`
starts a new model's encoder from it (``encoder=``) and records its provenance in the model
file (``meta["encoder"]``). One ``.pt`` file (``torch.save`` of plain containers, loadable
with ``weights_only=True``) holds the encoder's state dict (the ``encoder.*`` entries of a
:class:`~segmentation.core.resunet.ResUNet`), the architecture and scale it fits, and ``meta``:
the objective, steps, seconds and the volumes it read (names and fingerprints, never labels).
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from segmentation.core.modelfile import _plain
from segmentation.core.resunet import ResUNetConfig

__all__ = ["PretrainedEncoder", "save_encoder", "load_encoder", "encoder_mismatch", "ENCODER_FORMAT", "ENCODER_PREFIX"]

ENCODER_FORMAT = "emportal-encoder/1"
#: State-dict keys of a ResUNet's encoder start with this.
ENCODER_PREFIX = "encoder."


@dataclass
class PretrainedEncoder:
    """Encoder weights with the architecture and scale they fit.

    state : the ``encoder.*`` entries of a ResUNet state dict (CPU tensors).
    config : the network they came from (``out_channels`` does not matter to the encoder).
    scale : XY downsampling the encoder saw the image at.
    meta : provenance (objective, steps, seconds, ``sources``: the volumes read).
    """

    state: dict[str, torch.Tensor]
    config: ResUNetConfig
    scale: int
    meta: dict[str, Any] = field(default_factory=dict)


def encoder_mismatch(encoder: PretrainedEncoder, config: ResUNetConfig, scale: int) -> str | None:
    """Why ``encoder`` cannot start a network of ``config`` at ``scale``, or None when it can."""
    mine = (encoder.config.in_slices, encoder.config.base_width, encoder.config.depth, encoder.scale)
    wanted = (config.in_slices, config.base_width, config.depth, scale)
    if mine != wanted:
        return (f"the encoder was pretrained for in_slices, width, depth, scale {mine}, "
                f"the network is {wanted}")
    return None


def save_encoder(path: str | os.PathLike[str], encoder: PretrainedEncoder) -> Path:
    """Write ``encoder`` to ``path`` atomically (temporary file, then rename)."""
    path = Path(path)
    payload = {"format": ENCODER_FORMAT, "state_dict": {k: v.detach().cpu() for k, v in encoder.state.items()},
               "config": encoder.config.to_dict(), "scale": int(encoder.scale), "meta": _plain(encoder.meta)}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_encoder(source: str | os.PathLike[str] | PretrainedEncoder) -> PretrainedEncoder:
    """Read an encoder file (or pass a :class:`PretrainedEncoder` through)."""
    if isinstance(source, PretrainedEncoder):
        return source
    p = Path(source)
    if not p.is_file():
        raise FileNotFoundError(f"encoder file {str(p)!r} does not exist")
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises several types by content
        raise ValueError(f"{str(p)!r} is not an {ENCODER_FORMAT} file (torch cannot read it: {type(exc).__name__})") from None
    if not isinstance(payload, Mapping) or payload.get("format") != ENCODER_FORMAT:
        raise ValueError(f"{str(p)!r} is not an {ENCODER_FORMAT} file")
    state = dict(payload["state_dict"])
    if not state or not all(k.startswith(ENCODER_PREFIX) for k in state):
        raise ValueError(f"{str(p)!r} holds weights other than a ResUNet encoder's")
    return PretrainedEncoder(state, ResUNetConfig.from_dict(dict(payload["config"])), int(payload["scale"]),
                             dict(payload.get("meta", {})))
