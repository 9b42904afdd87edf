from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import zarr

from annotations.imaging.omezarr import create_label_layer, open_label_level, open_level, write_pyramid
from annotations.imaging.readers import ArraySource
from annotations.imaging.tiles import (
    instance_color,
    instance_colors,
    read_tile,
    render_image_tile,
    render_label_tile,
    tile_etag,
    tile_grid,
)


def _decode(data: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert img is not None
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[..., [2, 1, 0, 3]]  # BGRA -> RGBA
    return img


@pytest.fixture(scope="module")
def level0(tmp_path_factory: pytest.TempPathFactory) -> zarr.Array:
    rng = np.random.default_rng(7)
    vol = rng.integers(0, 256, (300, 290, 270), dtype=np.uint8)
    dest = tmp_path_factory.mktemp("tiles") / "v.ome.zarr"
    write_pyramid(ArraySource(vol), dest, voxel_size_nm=(4, 4, 4), chunks=(32, 128, 128))
    return open_level(dest, 0)


@pytest.mark.parametrize(
    ("axis", "index", "ty", "tx", "expected"),
    [
        ("z", 17, 1, 0, lambda v: v[17, 256:290, 0:256]),
        ("y", 5, 0, 1, lambda v: v[0:256, 5, 256:270]),
        ("x", 269, 1, 1, lambda v: v[256:300, 256:290, 269]),
    ],
)
def test_png_tiles_of_all_three_planes_equal_the_array(level0: zarr.Array, axis: str, index: int, ty: int, tx: int,
                                                       expected: Callable[[np.ndarray], np.ndarray]) -> None:
    tile = _decode(render_image_tile(level0, axis=axis, index=index, ty=ty, tx=tx, fmt="png"))
    want = expected(level0[:])
    assert tile.shape == want.shape  # edge tiles are smaller, not padded
    np.testing.assert_array_equal(tile, want)


def test_tile_grid_counts_edge_tiles() -> None:
    assert tile_grid((300, 290, 270), axis="z") == (2, 2)
    assert tile_grid((300, 290, 270), axis="x", tile=100) == (3, 3)


def test_the_window_maps_low_to_black_and_high_to_white() -> None:
    arr = np.array([[[1000, 1500, 2000, 3000]]], np.uint16)
    tile = _decode(render_image_tile(arr, axis="z", index=0, ty=0, tx=0, window=(1000, 2000)))
    assert tile.tolist() == [[0, 128, 255, 255]]
    full = _decode(render_image_tile(arr, axis="z", index=0, ty=0, tx=0))
    assert full.tolist() == [[4, 6, 8, 12]]  # default for uint16: the whole 0..65535 range


@pytest.mark.parametrize("window", [(5, 5), (10, 1), (0, float("nan")), ("a", 1)])
def test_it_refuses_empty_or_nonsense_windows(window: tuple[Any, Any]) -> None:
    with pytest.raises(ValueError, match="window"):
        render_image_tile(np.zeros((1, 4, 4), np.uint8), axis="z", index=0, ty=0, tx=0, window=window)


def test_webp_tiles_decode_to_the_tile_size_and_close_values(level0: zarr.Array) -> None:
    smooth = np.tile(np.arange(0, 256, 2, dtype=np.uint8), (1, 100, 1))
    tile = _decode(render_image_tile(smooth, axis="z", index=0, ty=0, tx=0, fmt="webp", quality=95))
    assert tile.shape[:2] == (100, 128)
    gray = tile if tile.ndim == 2 else tile[..., 0]
    assert np.abs(gray.astype(int) - smooth[0]).mean() < 3


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"axis": "z", "index": 300, "ty": 0, "tx": 0}, IndexError),
        ({"axis": "y", "index": -1, "ty": 0, "tx": 0}, IndexError),
        ({"axis": "z", "index": 0, "ty": 3, "tx": 0}, IndexError),
        ({"axis": "x", "index": 0, "ty": 0, "tx": 2}, IndexError),
        ({"axis": "x", "index": 0, "ty": -1, "tx": 0}, IndexError),
        ({"axis": "w", "index": 0, "ty": 0, "tx": 0}, ValueError),
        ({"axis": "z", "index": 1.5, "ty": 0, "tx": 0}, ValueError),
        ({"axis": "z", "index": 0, "ty": 0, "tx": 0, "tile": 0}, ValueError),
        ({"axis": "z", "index": 0, "ty": 0, "tx": 0, "fmt": "gif"}, ValueError),
    ],
)
def test_it_refuses_tiles_outside_the_volume_or_malformed(level0: zarr.Array, kwargs: dict[str, Any],
                                                          error: type[Exception]) -> None:
    with pytest.raises(error):
        render_image_tile(level0, **kwargs)


def test_label_tiles_use_class_colours_instance_colours_and_transparent_zero() -> None:
    labels = np.zeros((1, 2, 3), np.uint32)
    labels[0, 0] = [0, 1, 2]
    labels[0, 1] = [70001, 70001, 2]
    rgba = _decode(render_label_tile(labels, axis="z", index=0, ty=0, tx=0,
                                     colors={1: (255, 255, 0), 2: (255, 0, 0, 200)}))
    assert rgba.shape == (2, 3, 4)
    assert rgba[0, 0, 3] == 0
    assert rgba[0, 1].tolist() == [255, 255, 0, 255]
    assert rgba[0, 2].tolist() == [255, 0, 0, 200]
    assert rgba[1, 0].tolist() == list(instance_color(70001))


def test_label_opacity_scales_alpha_and_webp_stays_lossless() -> None:
    labels = np.array([[[3, 1], [0, 12345]]], np.uint16)
    rgba = _decode(render_label_tile(labels, axis="z", index=0, ty=0, tx=0, colors={1: (10, 20, 30)},
                                     opacity=0.5, fmt="webp"))
    assert rgba[0, 1].tolist() == [10, 20, 30, 128]
    assert rgba[0, 0, :3].tolist() == list(instance_color(3)[:3]) and rgba[0, 0, 3] == 128
    assert rgba[1, 0, 3] == 0
    with pytest.raises(ValueError, match="opacity"):
        render_label_tile(labels, axis="z", index=0, ty=0, tx=0, opacity=2)


def test_label_tiles_read_from_a_label_layer_on_every_axis(tmp_path: Path) -> None:
    dest = tmp_path / "v.ome.zarr"
    write_pyramid(ArraySource(np.zeros((4, 20, 30), np.uint8)), dest, voxel_size_nm=(1, 1, 1))
    create_label_layer(dest, "cells", dtype="uint32")
    layer = open_label_level(dest, "cells", 0, mode="r+")
    layer[2, 5, 7] = 42
    for axis, index in (("z", 2), ("y", 5), ("x", 7)):
        rgba = _decode(render_label_tile(layer, axis=axis, index=index, ty=0, tx=0))
        hit = np.argwhere(rgba[..., 3] > 0)
        assert len(hit) == 1
        assert rgba[tuple(hit[0])].tolist() == list(instance_color(42))


def test_instance_colours_are_deterministic_distinct_and_never_too_dark() -> None:
    ids = np.arange(1, 2001)
    colours = instance_colors(ids)
    np.testing.assert_array_equal(colours, instance_colors(ids.copy()))
    assert colours.min() >= 64
    assert len({tuple(c) for c in colours.tolist()}) > 1990
    assert instance_color(7) != instance_color(8)


def test_read_tile_reads_the_same_window_as_numpy_slicing(level0: zarr.Array) -> None:
    np.testing.assert_array_equal(read_tile(level0, axis="y", index=9, ty=2, tx=0, tile=100), level0[200:300, 9, 0:100])


def test_etags_change_with_any_part_and_are_quoted() -> None:
    a = tile_etag(1, "v1", "z", 3, 0, 0, 0, None, "png")
    assert a == tile_etag(1, "v1", "z", 3, 0, 0, 0, None, "png")
    assert a != tile_etag(1, "v2", "z", 3, 0, 0, 0, None, "png")
    assert a != tile_etag(1, "v1", "z", 3, 0, 0, 0, (0, 255), "png")
    assert a.startswith('"') and a.endswith('"')
