"""OpenAPI pieces shared by the apps' views: answers that a serializer cannot describe."""
from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes

# An object, or null before the thing exists (e.g. the latest run of a volume that has none).
NULLABLE_OBJECT: dict[str, Any] = {"type": "object", "nullable": True, "additionalProperties": True}

# A list of objects whose fields no serializer describes yet.
OBJECT_LIST: dict[str, Any] = {"type": "array", "items": {"type": "object", "additionalProperties": True}}


def file_response(*content_types: str) -> dict[tuple[int, str], Any]:
    """A 200 whose body is a file of one of `content_types` (binary, streamed)."""
    return {(200, content_type): OpenApiTypes.BINARY for content_type in content_types}
