"""Check real API answers and payloads against the OpenAPI schema the server publishes.

Stricter than the fuzzer's conformance check: an object whose schema lists properties may hold
no others, so a payload function that grows a field its output serializer lacks fails here.
"""
from __future__ import annotations

import copy
from functools import cache
from typing import Any

import jsonschema


@cache
def openapi_schema() -> dict[str, Any]:
    """The schema as /api/schema/ serves it."""
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def _as_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 to JSON Schema: `nullable` allows null; objects with properties are closed."""
    if isinstance(node, list):
        return [_as_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {key: _as_json_schema(value) for key, value in node.items() if key != "nullable"}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    if node.get("nullable"):
        out = {"anyOf": [out, {"type": "null"}]}
    return out


@cache
def _components() -> dict[str, Any]:
    return _as_json_schema(copy.deepcopy(openapi_schema()["components"]["schemas"]))


def _validate(instance: Any, schema: dict[str, Any]) -> None:
    root = {**schema, "components": {"schemas": _components()}}
    validator = jsonschema.Draft202012Validator(root, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])


def assert_matches_component(payload: Any, component: str) -> None:
    """`payload` is what the schema component `component` (e.g. "JobOutput") describes."""
    assert component in openapi_schema()["components"]["schemas"], f"no component {component}"
    _validate(payload, {"$ref": f"#/components/schemas/{component}"})


def response_schema(method: str, path: str, status: int, content_type: str = "application/json") -> dict[str, Any]:
    """The declared body schema of one answer of one operation (`path` as the schema writes it)."""
    operation = openapi_schema()["paths"][path][method.lower()]
    answer = operation["responses"].get(str(status))
    assert answer is not None, f"{method} {path} declares no {status} (it declares {list(operation['responses'])})"
    return _as_json_schema(answer["content"][content_type]["schema"])


def assert_answer_matches_schema(response: Any, method: str, path: str) -> None:
    """A Django test-client `response` to `method path` has the body its status declares."""
    _validate(response.json(), response_schema(method, path, response.status_code))
