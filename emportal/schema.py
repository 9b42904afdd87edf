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
