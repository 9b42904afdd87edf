"""OpenAPI pieces shared by the apps' views: the one error shape, file answers, and an answer that may be null."""
from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from rest_framework import serializers


def nullable(serializer: type[serializers.Serializer]) -> dict[str, Any]:
    """The schema of `serializer`'s component, or null (e.g. the latest run of a volume that has none).

    drf-spectacular drops ``allow_null`` on a serializer given as a whole response; the component
    is registered by another operation that answers with the same serializer.
    """
    return {"allOf": [{"$ref": f"#/components/schemas/{serializer.__name__}"}], "nullable": True}


def file_response(*content_types: str) -> dict[tuple[int, str], Any]:
    """A 200 whose body is a file of one of `content_types` (binary, streamed)."""
    return {(200, content_type): OpenApiTypes.BINARY for content_type in content_types}


class ErrorDetailOutput(serializers.Serializer):
    code = serializers.CharField(help_text="stable, for programs: invalid, not_found, job_running, ...")
    message = serializers.CharField(help_text="for people")
    detail = serializers.JSONField(required=False, help_text="what was wrong, e.g. the fields a body got wrong")


class ErrorOutput(serializers.Serializer):
    """Every refusal of the API (emportal.errors): ``{"error": {"code", "message"[, "detail"]}}``."""

    error = ErrorDetailOutput()


def with_errors(responses: Any, *codes: int) -> dict[Any, Any]:
    """`responses` (a serializer, or a dict of status: schema) plus an ErrorOutput for each of `codes`."""
    out = dict(responses) if isinstance(responses, dict) else {200: responses}
    out.update({code: ErrorOutput for code in codes})
    return out


# ------------------------------------------------------------------ files outside DRF
# Tiles and store files are plain Django views (bytes on a short path, no DRF): drf-spectacular
# does not see them, so this hook writes their operations into the schema by hand.

_ERROR_REF: dict[str, Any] = {"$ref": "#/components/schemas/ErrorOutput"}
_ID: dict[str, Any] = {"type": "integer", "format": "int64", "minimum": 1}
_PathParam = tuple[str, dict[str, Any], str]
_TILE_PARAMS: list[_PathParam] = [
    ("volume_id", _ID, "the volume"),
    ("axis", {"type": "string", "enum": ["z", "y", "x"]}, "the plane's normal: z for XY, y for XZ, x for YZ"),
    ("index", {"type": "integer", "minimum": 0}, "the plane's index along the axis, at level 0"),
    ("level", {"type": "integer", "minimum": 0}, "pyramid level (0: full resolution)"),
    ("ty", {"type": "integer", "minimum": 0}, "tile row"),
    ("tx", {"type": "integer", "minimum": 0}, "tile column"),
]


def _path_params(params: list[_PathParam]) -> list[dict[str, Any]]:
    return [{"name": n, "in": "path", "required": True, "schema": s, "description": d} for n, s, d in params]


def _query(name: str, description: str, *, pattern: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if pattern is not None:
        schema["pattern"] = pattern
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _binary(*content_types: str) -> dict[str, Any]:
    return {t: {"schema": {"type": "string", "format": "binary"}} for t in content_types}


def _tile_get(summary: str, tag: str, fmt_types: list[str], extra: list[dict[str, Any]],
              params: list[_PathParam]) -> dict[str, Any]:
    return {"get": {
        "operationId": summary.lower().replace(" ", "_"), "summary": summary, "tags": [tag],
        "parameters": _path_params(params) + extra,
        "responses": {
            "200": {"description": "the tile (cached by ETag)", "content": _binary(*fmt_types)},
            "304": {"description": "the client's copy (If-None-Match) is current"},
            "400": {"description": "a query parameter is malformed", "content": {"application/json": {"schema": _ERROR_REF}}},
            "404": {"description": "no such volume, layer, level, plane or tile, or not a member",
                    "content": {"application/json": {"schema": _ERROR_REF}}},
        },
        "security": [{"cookieAuth": []}, {"tokenAuth": []}, {}],
    }}


def file_endpoints(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the tile, diff-tile and store-file operations."""
    fmt: _PathParam = ("fmt", {"type": "string", "enum": ["png", "webp"]}, "image format")
    tile = "{axis}/{index}/{level}/{ty}/{tx}.{fmt}"
    window = _query("window", "display window lo,hi of the image's values (default: the volume's)",
                    pattern=r"^-?[0-9.eE+-]+,-?[0-9.eE+-]+$")
    layer: _PathParam = ("layer", {"type": "string", "pattern": "^[-a-zA-Z0-9_]+$"}, "label layer name")
    paths = result.setdefault("paths", {})
    paths[f"/api/volumes/{{volume_id}}/tiles/{tile}"] = _tile_get(
        "Image tile", "tiles", ["image/png", "image/webp"], [window], [*_TILE_PARAMS, fmt])
    paths[f"/api/volumes/{{volume_id}}/layers/{{layer}}/tiles/{tile}"] = _tile_get(
        "Label tile", "tiles", ["image/png", "image/webp"], [], [_TILE_PARAMS[0], layer, *_TILE_PARAMS[1:], fmt])
    paths["/api/volumes/{volume_id}/diff/tiles/{axis}/{index}/{level}/{ty}/{tx}.png"] = _tile_get(
        "Diff tile", "reviews", ["image/png"],
        [_query("a", "the first label layer"), _query("b", "the second label layer (its colours)")], _TILE_PARAMS)
    store_responses = {
        "200": {"description": "the whole file", "content": _binary("application/octet-stream", "application/json")},
        "206": {"description": "the byte range asked by Range", "content": _binary("application/octet-stream",
                                                                                    "application/json")},
        "304": {"description": "the client's copy (If-None-Match) is current"},
        "403": {"description": "an unknown or revoked token", "content": {"text/plain": {"schema": {"type": "string"}}}},
        "404": {"description": "no such file in the store, or not a member",
                "content": {"text/plain": {"schema": {"type": "string"}}}},
        "416": {"description": "the Range lies outside the file"},
    }
    paths["/api/volumes/{volume_id}/store/{path}"] = {"get": {
        "operationId": "volume_store_file", "summary": "A file of the volume's OME-Zarr store",
        "description": "Range requests, ETag, CORS for EMPORTAL_CORS_ORIGINS; the path of a chunk or metadata "
                       "file inside the store (e.g. 0/.zarray, labels/manual/0/0.0.0).",
        "tags": ["stores"],
        "parameters": _path_params([_TILE_PARAMS[0], ("path", {"type": "string", "pattern": "^[^/].*$"},
                                                      "a file inside the store")]),
        "responses": store_responses, "security": [{"cookieAuth": []}, {"tokenAuth": []}, {}],
    }}
    return result
