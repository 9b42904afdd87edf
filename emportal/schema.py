"""OpenAPI pieces shared by the apps' views: answers that a serializer cannot describe."""
from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from rest_framework import serializers

# An object, or null before the thing exists (e.g. the latest run of a volume that has none).
NULLABLE_OBJECT: dict[str, Any] = {"type": "object", "nullable": True, "additionalProperties": True}

# A list of objects whose fields no serializer describes yet.
OBJECT_LIST: dict[str, Any] = {"type": "array", "items": {"type": "object", "additionalProperties": True}}


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
