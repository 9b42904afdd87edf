"""The OpenAPI schema says what the job endpoints really answer: 202 with the job."""
from __future__ import annotations

from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator

QUEUEING = {
    "/api/volumes/{volume_id}/retrain/": "post",
    "/api/volumes/{volume_id}/segment/": "post",
    "/api/volumes/{volume_id}/cells/": "post",
    "/api/volumes/{volume_id}/reports/": "post",
    "/api/projects/{project_id}/volumes/": "post",
    "/api/projects/{project_id}/volumes/import-path/": "post",
}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


@pytest.mark.parametrize("path", sorted(QUEUEING))
def test_every_endpoint_that_queues_a_job_declares_202_with_the_job(schema: dict[str, Any], path: str) -> None:
    responses = schema["paths"][path][QUEUEING[path]]["responses"]
    assert "200" not in responses
    content = responses["202"]["content"]["application/json"]["schema"]
    assert content == {"$ref": "#/components/schemas/JobOutput"}
    fields = schema["components"]["schemas"]["JobOutput"]["properties"]
    assert {"id", "kind", "state", "progress", "message", "error_code", "volume"} <= set(fields)


def test_the_job_model_loop_actions_declare_their_409(schema: dict[str, Any]) -> None:
    for path in ("/api/volumes/{volume_id}/retrain/", "/api/volumes/{volume_id}/segment/"):
        assert "409" in schema["paths"][path]["post"]["responses"]
