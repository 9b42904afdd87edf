"""Tiles and store files are in the OpenAPI schema, and their real answers are what it declares."""
from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.factories import make_volume
from tests.openapi import assert_answer_matches_schema, openapi_schema

pytestmark = pytest.mark.django_db

IMAGE_TILE = "/api/volumes/{volume_id}/tiles/{axis}/{index}/{level}/{ty}/{tx}.{fmt}"
LABEL_TILE = "/api/volumes/{volume_id}/layers/{layer}/tiles/{axis}/{index}/{level}/{ty}/{tx}.{fmt}"
DIFF_TILE = "/api/volumes/{volume_id}/diff/tiles/{axis}/{index}/{level}/{ty}/{tx}.png"
STORE_FILE = "/api/volumes/{volume_id}/store/{path}"


@pytest.fixture
def volume(cast: Any, tmp_path: Any) -> Any:
    return make_volume(cast.project, tmp_path)


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _declared(path: str, status: int) -> set[str]:
    answer = openapi_schema()["paths"][path]["get"]["responses"][str(status)]
    return set(answer.get("content", {}))


@pytest.mark.parametrize("path", [IMAGE_TILE, LABEL_TILE, DIFF_TILE, STORE_FILE])
def test_every_file_operation_is_listed_with_its_path_parameters(path: str) -> None:
    operation = openapi_schema()["paths"][path]["get"]
    names = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
    assert names == {part.strip("{}").split(".")[0] for part in path.replace(".", "/").split("/") if part.startswith("{")}
    assert "404" in operation["responses"]


def test_a_tile_is_a_declared_image_and_a_missing_one_the_declared_json_error(cast: Any, volume: Any) -> None:
    client = _client(cast.viewer)
    tile = client.get(f"/api/volumes/{volume.pk}/tiles/z/0/0/0/0.webp")
    assert tile.status_code == 200 and tile["Content-Type"] in _declared(IMAGE_TILE, 200)
    label = client.get(f"/api/volumes/{volume.pk}/layers/manual/tiles/z/0/0/0/0.png")
    assert label.status_code == 200 and label["Content-Type"] in _declared(LABEL_TILE, 200)
    missing = client.get(f"/api/volumes/{volume.pk}/tiles/z/0/99/0/0.png")
    assert missing.status_code == 404 and missing["Content-Type"] == "application/json"
    assert missing.json()["error"]["code"] == "not_found"
    assert_answer_matches_schema(missing, "get", IMAGE_TILE)


def test_an_outsider_gets_the_same_json_404_as_for_a_volume_that_does_not_exist(cast: Any, volume: Any) -> None:
    outsider = _client(cast.outsider).get(f"/api/volumes/{volume.pk}/tiles/z/0/0/0/0.png")
    nowhere = _client(cast.viewer).get("/api/volumes/999999/tiles/z/0/0/0/0.png")
    assert outsider.status_code == nowhere.status_code == 404
    assert outsider.json() == nowhere.json()


def test_a_page_that_does_not_exist_is_still_the_html_404(cast: Any) -> None:
    response = _client(cast.viewer).get("/no/such/page/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


def test_store_files_answer_with_declared_types(cast: Any, volume: Any) -> None:
    client = _client(cast.viewer)
    chunk = client.get(f"/api/volumes/{volume.pk}/store/0/0/0/0")
    meta = client.get(f"/api/volumes/{volume.pk}/store/.zattrs")
    part = client.get(f"/api/volumes/{volume.pk}/store/0/0/0/0", HTTP_RANGE="bytes=0-9")
    missing = client.get(f"/api/volumes/{volume.pk}/store/no/such/file")
    assert chunk["Content-Type"] in _declared(STORE_FILE, 200) and meta["Content-Type"] in _declared(STORE_FILE, 200)
    assert part.status_code == 206 and part["Content-Type"] in _declared(STORE_FILE, 206)
    assert missing.status_code == 404 and missing["Content-Type"].split(";")[0] in _declared(STORE_FILE, 404)


@pytest.mark.parametrize("window", ["5", "a,b", "9,2", "0,inf", "nan,1"])
def test_a_malformed_window_is_the_declared_400_naming_the_parameter(cast: Any, volume: Any, window: str) -> None:
    response = _client(cast.viewer).get(f"/api/volumes/{volume.pk}/tiles/z/0/0/0/0.png", {"window": window})
    assert response.status_code == 400
    assert response.json()["error"]["detail"] == {"parameter": "window"}
    assert_answer_matches_schema(response, "get", IMAGE_TILE)
