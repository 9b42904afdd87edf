from __future__ import annotations

import pytest
import torch

from segmentation.core.classes import ClassSpec
from segmentation.core.defaults import MAX_PIXEL_NM, MIN_PIXEL_NM, defaults_meta, training_defaults
from segmentation.core.modelfile import Normalization, TrainedModel, load_model, prediction_tta, save_model
from segmentation.core.resunet import ResUNet, ResUNetConfig


@pytest.mark.parametrize(("voxel", "scale"), [
    ((40.0, 4.0, 4.0), 3),     # fine pixels: 12 nm, the first scale reaching 9 nm
    ((50.0, 4.6, 4.6), 2),     # ssTEM: 9.2 nm, as measured
    ((40.0, 5.9, 5.9), 2),     # SBEM: 11.8 nm, as measured
    ((50.0, 10.0, 10.0), 2),   # HeLa SBF-SEM: 20 nm, where half resolution beat full by 0.2 Dice
    ((60.0, 12.0, 12.0), 1),   # 2 x 12 nm would pass 20 nm
    ((100.0, 30.0, 30.0), 1),  # coarse pixels stay as they are
])
def test_serial_sections_get_the_scale_that_puts_the_network_pixel_between_9_and_20_nm(voxel, scale):
    d = training_defaults(voxel, "cpu")
    assert d.scale == scale and d.context_slices == 1
    if scale > 1:
        assert MIN_PIXEL_NM <= d.scale * voxel[1] <= MAX_PIXEL_NM + 1e-9 and d.patch == 96


def test_near_isotropic_voxels_keep_full_resolution_and_five_input_slices():
    d = training_defaults((4.0, 4.0, 4.0), "cpu")
    assert (d.scale, d.context_slices, d.patch) == (1, 5, 160)
    assert training_defaults((8.0, 4.0, 4.0), "cpu").context_slices == 5


def test_the_device_sizes_patch_and_batch_but_not_the_scale():
    cpu, cuda = training_defaults((40.0, 5.9, 5.9), "cpu"), training_defaults((40.0, 5.9, 5.9), torch.device("cuda"))
    assert (cpu.patch, cpu.batch) == (96, 4) and (cuda.patch, cuda.batch) == (256, 16)
    assert cpu.scale == cuda.scale == 2 and cpu.tta and cuda.tta and cpu.ema == cuda.ema == 0.99


def test_an_unknown_voxel_size_assumes_nothing_about_the_sample():
    d = training_defaults(None, "cpu")
    assert (d.scale, d.context_slices, d.patch, d.voxel_size_nm) == (1, 1, 160, None)
    assert "unknown" in d.reason


@pytest.mark.parametrize("bad", [(0.0, 5.0, 5.0), (40.0, -1.0, 5.0), (40.0, 5.0), (40.0, float("nan"), 5.0)])
def test_a_bad_voxel_size_is_refused_by_name(bad):
    with pytest.raises(ValueError, match="voxel_size_nm"):
        training_defaults(bad, "cpu")


def test_explicit_choices_override_the_defaults_in_the_train_config():
    d = training_defaults((40.0, 5.9, 5.9), "cpu")
    config = d.config(scale=1, max_steps=3)
    assert (config.scale, config.patch, config.batch, config.in_slices, config.ema, config.max_steps) == (1, 96, 4, 1, 0.99, 3)
    assert config.elastic == 0.0 and config.augment


def test_the_em_strength_intensity_augmentation_is_off_unless_asked_for():
    """It lowered Dice both next to the labels and on the unseen regions (docs/ACCURACY.md)."""
    d = training_defaults((40.0, 5.9, 5.9), "cpu")
    assert d.intensity == d.config().intensity == "basic" and d.to_dict()["intensity"] == "basic"
    assert d.config(intensity="em").intensity == "em"


def test_a_fine_tune_keeps_its_last_weights_and_a_first_model_its_best_on_validation():
    d = training_defaults((40.0, 5.9, 5.9), "cpu")
    assert d.config().select_best and not d.config(finetune=True).select_best
    assert d.config(finetune=True, select_best=True).select_best  # an explicit choice still wins


def test_the_choice_is_stored_in_the_model_file_and_read_back_for_prediction(tmp_path):
    d = training_defaults((40.0, 5.9, 5.9), "cpu")
    cfg = ResUNetConfig(1, 2, 4, 2)
    model = TrainedModel(ResUNet(cfg), cfg, ClassSpec.build({"background": 1, "mitochondrion": 2}), Normalization(0.0, 1.0),
                         scale=d.scale, meta=defaults_meta(d, overrides={"patch": 64}))
    assert not prediction_tta(TrainedModel(model.net, cfg, model.classes, model.normalization))  # older files: no TTA
    loaded = load_model(save_model(tmp_path / "m.pt", model))
    assert prediction_tta(loaded) and loaded.scale == 2
    assert loaded.meta["defaults"]["scale"] == 2 and loaded.meta["defaults"]["voxel_size_nm"] == [40.0, 5.9, 5.9]
    assert loaded.meta["overrides"] == {"patch": 64} and "11.8 nm" in loaded.meta["defaults"]["reason"]
