"""Pure imaging layer (no Django): read EM sources, write OME-Zarr pyramids, render tiles.

- :mod:`.validation`: path confinement, upload names, size limits (hostile input).
- :mod:`.readers`: ``open_source`` -> lazy ZYX :class:`Source` for TIFF, HDF5, MRC, Zarr.
- :mod:`.omezarr`: ``write_pyramid`` (blockwise, atomic), levels, NGFF label layers.
- :mod:`.tiles`: PNG/WebP tiles of XY/XZ/YZ planes, label colours, ETags.
"""

from __future__ import annotations

from annotations.imaging.omezarr import (
    LevelInfo,
    PyramidInfo,
    create_label_layer,
    delete_label_layer,
    open_label_level,
    open_level,
    read_info,
    update_label_pyramid,
    update_label_pyramid_boxes,
    write_pyramid,
)
from annotations.imaging.readers import ArraySource, Source, open_source
from annotations.imaging.tiles import (
    instance_color,
    render_image_tile,
    render_label_tile,
    tile_etag,
)
from annotations.imaging.validation import Limits, resolve_inside, safe_filename

__all__ = [
    "ArraySource",
    "LevelInfo",
    "Limits",
    "PyramidInfo",
    "Source",
    "create_label_layer",
    "delete_label_layer",
    "instance_color",
    "open_label_level",
    "open_level",
    "open_source",
    "read_info",
    "render_image_tile",
    "render_label_tile",
    "resolve_inside",
    "safe_filename",
    "tile_etag",
    "update_label_pyramid",
    "update_label_pyramid_boxes",
    "write_pyramid",
]
