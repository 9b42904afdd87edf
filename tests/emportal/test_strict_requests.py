"""Requests the API refuses answer in its one JSON error shape, never with a 500 or an HTML page."""
from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import tifffile
from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client
from django.urls import URLPattern, URLResolver, get_resolver

from tests.factories import make_volume

pytestmark = pytest.mark.django_db

DEEP = 200_000


CSRF = "a" * 32


def _client(user: Any) -> Client:
    """A logged-in browser as a live server sees it: CSRF checked, so DRF reads the body while authenticating."""
    client = Client(raise_request_exception=False, enforce_csrf_checks=True, HTTP_X_CSRFTOKEN=CSRF)
    client.force_login(user)
    client.cookies["csrftoken"] = CSRF
    return client


def _error(response: Any) -> dict[str, Any]:
    assert response["Content-Type"] == "application/json", response.content[:200]
    return response.json()["error"]


@pytest.mark.parametrize("role", ["viewer", "outsider", "manager"])
@pytest.mark.parametrize("body", ["[" * DEEP + "]" * DEEP, '{"a":' * DEEP + "1" + "}" * DEEP])
def test_a_json_body_nested_deeper_than_the_parser_allows_is_a_json_400(cast: Any, role: str, body: str) -> None:
    response = _client(cast.by_role(role)).post(f"/api/projects/{cast.project.pk}/members/", body,
                                                content_type="application/json")
    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == "parse_error" and "nested" in error["message"]


def test_a_deeply_nested_json_body_changes_nothing(cast: Any, tmp_path: Any) -> None:
    volume = make_volume(cast.project, tmp_path)
    response = _client(cast.annotator).post(f"/api/volumes/{volume.pk}/strokes/", "[" * DEEP + "]" * DEEP,
                                            content_type="application/json")
    assert response.status_code == 400 and _error(response)["code"] == "parse_error"
    assert not volume.layers.get(name="manual").strokes.exists()


def test_a_body_over_the_size_limit_is_a_json_413_that_names_the_limit(cast: Any, settings: Any) -> None:
    body = b'{"username": "' + b"x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1) + b'", "role": "viewer"}'
    response = _client(cast.manager).post(f"/api/projects/{cast.project.pk}/members/", body,
                                          content_type="application/json")
    assert response.status_code == 413
    error = _error(response)
    assert error["code"] == "too_large" and "10.0 MB" in error["message"]


def test_a_form_body_over_the_size_limit_is_a_json_413_too(cast: Any, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = _client(cast.manager).post(f"/api/projects/{cast.project.pk}/members/",
                                          "username=" + "x" * 2000 + "&role=viewer",
                                          content_type="application/x-www-form-urlencoded")
    assert response.status_code == 413 and _error(response)["code"] == "too_large"


def test_an_upload_may_exceed_the_json_limit_but_not_the_upload_limit(cast: Any, settings: Any,
                                                                        tmp_path: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    settings.UPLOAD_MAX_BYTES = 50_000
    client = _client(cast.manager)
    path = tmp_path / "small.tif"
    tifffile.imwrite(path, np.zeros((1, 70, 70), np.uint8))  # over the JSON limit, under the upload limit
    with path.open("rb") as handle:
        response = client.post(f"/api/projects/{cast.project.pk}/volumes/", {"file": handle, "voxel_size_nm": "4,4,4"})
    assert response.status_code == 202, response.content[:300]
    path.write_bytes(b"\0" * 60_000)
    with path.open("rb") as handle:
        response = client.post(f"/api/projects/{cast.project.pk}/volumes/", {"file": handle})
    assert response.status_code == 413 and _error(response)["code"] == "too_large"


# ----------------------------------------------------------------------------- ids beyond 64 bits
_PARAM = re.compile(r"<(?:(?P<conv>[^>:]+):)?(?P<name>[^>]+)>")
_SAMPLE = {"axis": "z", "fmt": "png", "slug": "manual", "str": "csv", "uuid": str(uuid.uuid4()), "path": "x"}


def _routes(patterns: list[Any], prefix: str = "") -> Iterator[str]:
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _routes(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern)


def _urls_with_a_huge_id(route: str, known: dict[str, int]) -> Iterator[str]:
    """The route with each int parameter in turn beyond 64 bits, the others set to rows that exist."""
    ints = [m["name"] for m in _PARAM.finditer(route) if m["conv"] == "int"]
    for huge_name in ints:
        def fill(m: re.Match[str], huge_name: str = huge_name) -> str:
            if m["conv"] == "int":
                return str(2**63) if m["name"] == huge_name else str(known.get(m["name"], 0))
            return _SAMPLE.get(m["conv"] or "str", "x")
        url = "/" + _PARAM.sub(fill, route)
        yield url.replace(".<fmt:fmt>", ".png")


def test_every_route_answers_404_not_500_for_an_id_beyond_64_bits(cast: Any, tmp_path: Any) -> None:
    volume = make_volume(cast.project, tmp_path)
    known = {"project_id": cast.project.pk, "volume_id": volume.pk}
    routes = [r for r in _routes(get_resolver().url_patterns) if "<int:" in r]
    assert len(routes) > 30  # the walk found the app's routes
    client = _client(cast.manager)
    failures = []
    for route in routes:
        for url in _urls_with_a_huge_id(route, known):
            for method in ("get", "post"):
                response = getattr(client, method)(url, {}, content_type="application/json") if method == "post" \
                    else client.get(url)
                if response.status_code >= 500 or response.status_code in (200, 201, 202):
                    failures.append((method, url, response.status_code))
    assert failures == []


def test_an_id_beyond_64_bits_is_a_json_404_through_the_asgi_handler_too(cast: Any) -> None:
    client = AsyncClient()
    client.force_login(cast.manager)
    response = async_to_sync(client.get)(f"/api/volumes/{2**64}/tiles/z/0/0/0/0.png")
    assert response.status_code == 404 and _error(response)["code"] == "not_found"
