"""Augmentation: what the basic and the EM-strength intensity changes do to a patch, and that
the patches of a seed stay what they were unless the stronger one is asked for."""
from __future__ import annotations

import numpy as np
import pytest

from segmentation.core.classes import ClassSpec
from segmentation.core.sampling import LabeledSlices, PatchSampler, augment, em_intensity
from segmentation.core.training import TrainConfig

CLASSES = {"background": 1, "mito": 2}


def _data() -> LabeledSlices:
    rng = np.random.default_rng(7)
    images = rng.random((2, 3, 40, 40)).astype(np.float32) - 0.5
    labels = rng.integers(0, 3, (2, 40, 40)).astype(np.uint8)
    return LabeledSlices(images, labels, np.array([False, True]), [0, 1])


def _sampler(**kw: object) -> PatchSampler:
    return PatchSampler(_data(), ClassSpec.build(CLASSES), patch=24, rng=np.random.default_rng(3), **kw)


def _disk() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:64, 0:64]
    disk = ((yy - 32) ** 2 + (xx - 28) ** 2 < 14**2).astype(np.float32)
    return (disk - 0.5)[None], np.stack([disk, 1 - disk]), np.ones((2, 64, 64), np.float32)


@pytest.mark.parametrize(("elastic", "sums"), [
    (0.0, (598.5451889561955, 788.3466566578686, 1141.0, 2873.0, -215.54813337139785)),
    (0.5, (600.0469979001718, 648.4298045843542, 1134.0, 2832.0, -118.41676864783221)),
])
def test_the_basic_intensity_augmentation_gives_a_seed_the_patches_it_always_gave(elastic, sums):
    """Sums of two batches of a fixed seed, recorded before the "em" strength existed: the
    default draws nothing more from the generator, so earlier figures can be reproduced."""
    sampler = _sampler(elastic=elastic)
    x, t, w = sampler.batch(6)
    x2, _, _ = sampler.batch(2)
    got = (float(x.astype(np.float64).sum()), float((x.astype(np.float64) ** 2).sum()), float(t.sum()), float(w.sum()),
           float(x2.astype(np.float64).sum()))
    assert got == pytest.approx(sums, rel=1e-6)


def test_the_default_config_and_sampler_use_the_basic_strength():
    assert TrainConfig().intensity == "basic" and _sampler().intensity == "basic"
    a, b = _sampler().batch(4), _sampler(intensity="basic").batch(4)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))


def test_the_em_strength_changes_only_the_image_and_gives_finite_float32():
    image, target, weight = _disk()
    basic = augment(image, target, weight, rng=np.random.default_rng(5))
    em = augment(image, target, weight, rng=np.random.default_rng(5), intensity="em")
    assert np.array_equal(em[1], basic[1]) and np.array_equal(em[2], basic[2])  # same turn and flips
    assert not np.allclose(em[0], basic[0])
    assert em[0].dtype == np.float32 and em[0].shape == image.shape and np.isfinite(em[0]).all()


def test_the_em_strength_keeps_the_objects_visible():
    """However strong, the change is monotone enough that the disk stays brighter than its
    surround in most patches (it imitates another acquisition, not another specimen)."""
    image, target, _ = _disk()
    rng = np.random.default_rng(0)
    inside = target[0] > 0
    brighter = [(out := em_intensity(image, rng=rng))[0][inside].mean() > out[0][~inside].mean() for _ in range(200)]
    assert np.mean(brighter) == 1.0


def test_the_em_strength_varies_contrast_brightness_and_noise_more_than_the_basic_one():
    image, target, weight = _disk()
    rng_b, rng_e = np.random.default_rng(1), np.random.default_rng(1)
    basic = np.stack([augment(image, target, weight, rng=rng_b)[0] for _ in range(300)])
    em = np.stack([augment(image, target, weight, rng=rng_e, intensity="em")[0] for _ in range(300)])
    assert em.mean(axis=(1, 2, 3)).std() > 1.3 * basic.mean(axis=(1, 2, 3)).std()    # brightness and ramps
    assert em.std(axis=(1, 2, 3)).std() > 1.3 * basic.std(axis=(1, 2, 3)).std()      # contrast and gamma
    assert em.min() < basic.min() and em.max() > basic.max()


def test_the_em_strength_sometimes_blurs_removing_high_frequencies():
    """A patch of fine noise: the blurred draws lose most of the difference between neighbours."""
    rng = np.random.default_rng(2)
    noise = rng.normal(0.0, 0.2, (1, 64, 64)).astype(np.float32)

    def roughness(a: np.ndarray) -> float:  # high-frequency energy relative to the whole
        return float(np.abs(np.diff(a, axis=-1)).mean() / (a.std() + 1e-9))

    scores = np.array([roughness(em_intensity(noise, rng=rng)) for _ in range(200)])
    sharp = roughness(noise)
    assert (scores < 0.7 * sharp).mean() > 0.15      # blur on about 30 % of the draws
    assert (scores > 0.9 * sharp).mean() > 0.5       # the others keep the fine detail


def test_the_em_strength_adds_smooth_ramps_across_a_flat_patch():
    """On a flat grey patch, without noise the only spatial change left is the ramp: smooth
    (neighbours almost equal) but spanning a clear range across the patch."""
    flat = np.zeros((1, 64, 64), np.float32)
    rng = np.random.default_rng(4)
    ranges, steps = [], []
    for _ in range(200):
        out = em_intensity(flat, rng=rng)[0]
        ranges.append(float(np.ptp(out)))
        steps.append(float(np.abs(np.diff(out, axis=-1)).max()))
    smooth = np.array([r > 0.05 and s < r / 10 for r, s in zip(ranges, steps)])
    assert smooth.mean() > 0.1


def test_it_refuses_an_unknown_intensity_strength():
    with pytest.raises(ValueError, match="intensity"):
        _sampler(intensity="strong")
    image, target, weight = _disk()
    with pytest.raises(ValueError, match="intensity"):
        augment(image, target, weight, rng=np.random.default_rng(0), intensity="strong")
