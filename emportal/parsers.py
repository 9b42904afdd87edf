"""The API's JSON parser: DRF's, with a body nested too deeply refused as a 400.

DRF parses the body while authenticating (the CSRF check reads ``request.POST``), so
a parser error reaches every logged-in user, whatever their role: ``[`` repeated
200 000 times made the decoder raise ``RecursionError``, which DRF lets through as a 500.
"""
from __future__ import annotations

import json
from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

NESTED_TOO_DEEPLY = "the JSON document is nested too deeply"


def json_loads(text: str | bytes) -> Any:
    """``json.loads`` that raises ValueError, not RecursionError, for a document nested too deeply."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError(NESTED_TOO_DEEPLY) from None


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - {NESTED_TOO_DEEPLY}") from None
