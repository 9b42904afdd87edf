from __future__ import annotations

import pytest
import torch

from segmentation.core.resunet import ResidualBlock, ResUNet, ResUNetConfig

torch.set_num_threads(1)  # tiny tensors: threads only add overhead on the shared 2-core machine

@pytest.mark.parametrize("in_slices", [1, 3])
def test_it_returns_one_logit_map_per_class_for_2d_and_25d_input(in_slices):
    net = ResUNet(ResUNetConfig(in_slices=in_slices, out_channels=3, base_width=4, depth=3))
    out = net(torch.randn(2, in_slices, 32, 48))
    assert out.shape == (2, 3, 32, 48)


def test_it_passes_gradients_to_every_parameter():
    net = ResUNet(ResUNetConfig(in_slices=3, out_channels=2, base_width=4, depth=3))
    net(torch.randn(2, 3, 16, 16)).square().mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert missing == []


def test_it_uses_an_identity_shortcut_only_when_shape_is_kept():
    same = ResidualBlock(8, 8)
    wider = ResidualBlock(8, 16)
    strided = ResidualBlock(8, 8, stride=2)
    assert isinstance(same.shortcut, torch.nn.Identity)
    assert isinstance(wider.shortcut, torch.nn.Sequential) and isinstance(strided.shortcut, torch.nn.Sequential)
    assert strided(torch.randn(1, 8, 16, 16)).shape == (1, 8, 8, 8)


def test_it_grows_with_width_and_depth():
    def count(**kw):
        return sum(p.numel() for p in ResUNet(ResUNetConfig(**kw)).parameters())

    assert count(base_width=8, depth=3) < count(base_width=16, depth=3) < count(base_width=16, depth=4)


def test_it_names_an_input_size_it_cannot_halve():
    net = ResUNet(ResUNetConfig(base_width=4, depth=3))
    with pytest.raises(ValueError, match="divisible by 4"):
        net(torch.zeros(1, 1, 18, 16))


def test_it_refuses_an_even_number_of_input_slices():
    with pytest.raises(ValueError, match="in_slices"):
        ResUNetConfig(in_slices=2)
