"""Tile endpoints: image and label tiles of XY, XZ and YZ planes at any pyramid level.

Plain Django views rather than DRF: a tile is bytes, not JSON, and the viewer asks for
hundreds of them, so the path is kept short (one role check, one chunk-region read,
one encode). Image tiles never change, so their ETag is the request itself; label
tiles carry the layer version so a stroke invalidates them.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotModified
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from annotations import pyramid_updates
from annotations.access import ready_volume_row_for_request
from annotations.imaging import omezarr, tiles
from annotations.layers import class_colors
from annotations.models import LabelLayer
from emportal.errors import ApplicationError, error_response

CONTENT_TYPES = {"png": "image/png", "webp": "image/webp"}


# Opened arrays are kept (opening reads metadata); keyed by absolute path so that a
# changed MEDIA_ROOT never serves another store's array.
@lru_cache(maxsize=256)
def _open_image_level(path: str, level: int) -> Any:
    return omezarr.open_level(Path(path), level)


@lru_cache(maxsize=256)
def _open_label_level(path: str, layer: str, level: int) -> Any:
    return omezarr.open_label_level(Path(path), layer, level)


def _image_level(zarr_path: str, level: int) -> Any:
    return _open_image_level(str(Path(settings.MEDIA_ROOT) / zarr_path), level)


def label_level(zarr_path: str, layer: str, level: int) -> Any:
    """The opened array of one level of a label layer (store path relative to MEDIA_ROOT), as tiles read it.

    Levels >= 1 are returned once the strokes this process acknowledged have reached them.
    """
    dest = Path(settings.MEDIA_ROOT) / zarr_path
    if level > 0:  # strokes acknowledged in this process reach the coarser levels first
        pyramid_updates.wait(dest, layer)
    return _open_label_level(str(dest), layer, level)


def _window(request: HttpRequest) -> tuple[float, float] | None:
    """The ``?window=lo,hi`` display window; ApplicationError (400) when it is malformed."""
    raw = request.GET.get("window")
    if not raw:
        return None
    try:
        lo, hi = (float(v) for v in raw.split(","))
    except ValueError:
        raise ApplicationError("window must be lo,hi", code="invalid", detail={"parameter": "window"}) from None
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise ApplicationError("window must be finite with hi > lo", code="invalid", detail={"parameter": "window"})
    return lo, hi


def tile_volume(request: HttpRequest, volume_id: int, level: int) -> dict[str, Any]:
    """The ready volume's row a tile request may read (role checked, 404 otherwise), `level` inside its pyramid."""
    volume = ready_volume_row_for_request(request, volume_id)
    if level >= len(volume["levels"]):
        raise Http404("no such level")
    return volume


def tile_response(request: HttpRequest, etag: str, render: Callable[[], bytes], fmt: str, cache_control: str
                  ) -> HttpResponse:
    """The answer to a tile request: 304 when the client holds `etag`, else `render()`'s bytes as `fmt`.

    A render that finds the plane off the array (IndexError, ValueError) is a 404. Every tile
    view, here and in other apps, answers through this, so headers and caching stay one.
    """
    if request.headers.get("If-None-Match") == etag:
        response: HttpResponse = HttpResponseNotModified()
    else:
        try:
            body = render()
        except (IndexError, ValueError) as exc:
            raise Http404(str(exc)) from None
        response = HttpResponse(body, content_type=CONTENT_TYPES[fmt])
    response["ETag"] = etag
    response["Cache-Control"] = cache_control
    response["X-Content-Type-Options"] = "nosniff"
    patch_vary_headers(response, ("Cookie", "Authorization"))  # the answer depends on who asks
    return response


@require_GET
def image_tile(request: HttpRequest, volume_id: int, axis: str, index: int, level: int, ty: int, tx: int,
               fmt: str) -> HttpResponse:
    volume = tile_volume(request, volume_id, level)
    try:
        window = _window(request)
    except ApplicationError as exc:
        return error_response(exc)
    etag = f'"img-{volume_id}-{axis}{index}-{level}-{ty}-{tx}-{window}-{fmt}"'

    def render() -> bytes:
        return tiles.render_image_tile(_image_level(volume["zarr_path"], level), axis=axis, index=index,
                                       ty=ty, tx=tx, window=window, fmt=fmt)

    return tile_response(request, etag, render, fmt, "private, max-age=86400")


@require_GET
def label_tile(request: HttpRequest, volume_id: int, layer: str, axis: str, index: int, level: int, ty: int,
               tx: int, fmt: str) -> HttpResponse:
    volume = tile_volume(request, volume_id, level)
    label_layer = LabelLayer.objects.filter(volume_id=volume_id, name=layer).values("kind", "version").first()
    if label_layer is None:
        raise Http404("no such layer")
    etag = f'"lab-{volume_id}-{layer}-v{label_layer["version"]}-{axis}{index}-{level}-{ty}-{tx}-{fmt}"'

    def render() -> bytes:
        colors = (class_colors(volume["project_id"])
                  if label_layer["kind"] == LabelLayer.Kind.LABELS else {})
        return tiles.render_label_tile(label_level(volume["zarr_path"], layer, level), axis=axis, index=index,
                                       ty=ty, tx=tx, colors=colors, fmt=fmt)

    return tile_response(request, etag, render, fmt, "private, no-cache")
