"""The OpenAPI schema drives a property-based fuzzer (schemathesis) against a live server:
for every operation and every role, generated requests never get a 500, and every answer
has a content type and a body the schema declares.

Path parameters name the rows of the `world` fixture (a project, volume, job, report, model,
run, review, comment), so the fuzzer reaches real objects, not only 404s; bodies, queries and
the remaining parameters are generated from the schema.
"""
from __future__ import annotations

from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance

from emportal.tokens.services import token_create
from tests.annotations.test_permissions import world  # noqa: F401  (fixture)

pytestmark = [pytest.mark.services, pytest.mark.slow]

ROLES = ("viewer", "annotator", "reviewer", "manager", "outsider", "anonymous")
EXAMPLES = 3  # generated requests per operation and role
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def _schema() -> dict[str, Any]:
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def _path_values(world: dict[str, Any], spare_token_id: int) -> dict[str, Any]:
    ids = world["ids"]
    return {"project_id": ids["p"], "volume_id": ids["v"], "job_id": ids["j"], "report_id": ids["r"],
            "model_id": ids["m"], "other_id": ids["m2"], "run_id": ids["run"], "review_id": ids["rv"],
            "comment_id": ids["c"], "layer": "manual", "token_id": spare_token_id}


def _headers(world: dict[str, Any]) -> dict[str, dict[str, str]]:
    cast = world["cast"]
    headers: dict[str, dict[str, str]] = {"anonymous": {}}
    for role in ROLES[:-1]:
        _, key = token_create(getattr(cast, role), "fuzzer")
        headers[role] = {"Authorization": f"Token {key}"}
    return headers


def _fuzz(operation: Any, base_url: str, headers: dict[str, str], fixed: dict[str, Any]) -> None:
    session = requests.Session()

    @given(case=operation.as_strategy(path_parameters=fixed))
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        response = case.call(base_url=base_url, session=session, headers=headers, timeout=60)
        case.validate_response(response, checks=CHECKS)

    run()


def test_no_generated_request_gets_a_500_or_an_answer_off_the_schema(live_app: str, world: dict) -> None:  # noqa: F811
    cast = world["cast"]
    spare, _ = token_create(cast.manager, "spare")  # the one DELETE /api/tokens/{id}/ may revoke
    fixed_values = _path_values(world, spare.pk)
    headers = _headers(world)
    schema = schemathesis.openapi.from_dict(_schema())
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        names = {p.name for p in operation.path_parameters}
        fixed = {name: value for name, value in fixed_values.items() if name in names}
        for role in ROLES:
            try:
                _fuzz(operation, live_app, headers[role], fixed)
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect every failure, report all
                failures.append(f"{operation.label} as {role}: {str(exc)[:2500]}")
    assert operations >= 50, f"the schema lists only {operations} operations"
    assert not failures, "\n\n".join(failures)
