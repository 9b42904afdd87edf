"""ResUNet (paper Fig. 2A/2B): a U-Net whose layers are pre-activation residual blocks.

Residual block (Fig. 2B): ``x_{l+1} = F(x_l) + shortcut(x_l)`` with
``F = BN-ReLU-conv3x3-BN-ReLU-conv3x3`` and the shortcut the identity, or a 1x1 conv
(+BN) where the width or the stride changes. Network (Fig. 2A): an encoder of residual
blocks, each level after the first halving the resolution with a stride-2 first conv;
a bridge; a decoder that upsamples, concatenates the encoder skip and applies a residual
block; a final 1x1 conv giving one logit per class (sigmoid outside the network, so nested
classes coexist).

2D and 2.5D: the network is 2D; 2.5D feeds ``in_slices`` neighbouring Z slices as input
channels and predicts the centre slice. Departure from the paper: widths are configurable
and default to 16-32-64-128 (the paper's figure uses wider layers) so that training fits
a CPU time budget; ``base_width=64`` restores the original width.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["ResUNetConfig", "ResUNet", "ResidualBlock"]


@dataclass(frozen=True)
class ResUNetConfig:
    """Architecture of a :class:`ResUNet`.

    in_slices : number of Z slices given as input channels (1 = 2D; 3, 5 = 2.5D); odd.
    out_channels : number of heads (one per non-background class).
    base_width : feature maps of the first level; level ``i`` has ``base_width * 2**i``.
    depth : number of resolution levels, including the bridge (>= 2). Input height and
        width must be divisible by ``2 ** (depth - 1)``.
    """

    in_slices: int = 1
    out_channels: int = 1
    base_width: int = 16
    depth: int = 4

    def __post_init__(self) -> None:
        if self.in_slices < 1 or self.in_slices % 2 == 0:
            raise ValueError(f"in_slices must be odd and >= 1, got {self.in_slices}")
        if self.out_channels < 1:
            raise ValueError(f"out_channels must be >= 1, got {self.out_channels}")
        if self.base_width < 1:
            raise ValueError(f"base_width must be >= 1, got {self.base_width}")
        if self.depth < 2:
            raise ValueError(f"depth must be >= 2, got {self.depth}")

    @property
    def divisor(self) -> int:
        """Input YX sizes must be multiples of this."""
        return 2 ** (self.depth - 1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResUNetConfig:
        return cls(**{k: int(v) for k, v in data.items() if k in cls.__dataclass_fields__})


class ResidualBlock(nn.Module):
    """Pre-activation residual block: BN-ReLU-conv(stride)-BN-ReLU-conv + shortcut.

    The very first block of the network takes the raw image, so it starts with a conv
    rather than BN-ReLU (as in Zhang et al.'s ResUNet), ``first=True``.
    """

    def __init__(self, cin: int, cout: int, *, stride: int = 1, first: bool = False) -> None:
        super().__init__()
        self.first = first
        self.bn1 = nn.Identity() if first else nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        if stride != 1 or cin != cout:
            self.shortcut: nn.Module = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(self.bn1(x))
        h = self.conv1(h)
        h = self.conv2(F.relu(self.bn2(h)))
        return h + self.shortcut(x)


class ResUNet(nn.Module):
    """ResUNet returning one logit per class.

    Input ``(N, in_slices, H, W)`` float, H and W multiples of ``config.divisor``;
    output ``(N, out_channels, H, W)`` logits.

    Examples
    --------
    >>> net = ResUNet(ResUNetConfig(in_slices=3, out_channels=2, base_width=4, depth=3))
    >>> net(torch.zeros(1, 3, 16, 16)).shape
    torch.Size([1, 2, 16, 16])
    """

    def __init__(self, config: ResUNetConfig) -> None:
        super().__init__()
        self.config = config
        widths = [config.base_width * 2**i for i in range(config.depth)]
        self.encoder = nn.ModuleList()
        cin = config.in_slices
        for i, w in enumerate(widths):
            self.encoder.append(ResidualBlock(cin, w, stride=1 if i == 0 else 2, first=i == 0))
            cin = w
        self.decoder = nn.ModuleList()
        for i in reversed(range(config.depth - 1)):
            self.decoder.append(ResidualBlock(widths[i + 1] + widths[i], widths[i]))
        self.head = nn.Sequential(nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True), nn.Conv2d(widths[0], config.out_channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.config.divisor
        if x.ndim != 4 or x.shape[1] != self.config.in_slices:
            raise ValueError(f"input shape {tuple(x.shape)} is not (N, {self.config.in_slices}, H, W)")
        if x.shape[-2] % d or x.shape[-1] % d:
            raise ValueError(f"input size {tuple(x.shape[-2:])} is not divisible by {d}")
        skips = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
        x = skips.pop()
        for block in self.decoder:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="nearest")
            x = block(torch.cat([x, skip], dim=1))
        return self.head(x)
