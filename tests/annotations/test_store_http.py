"""The OME-Zarr stores over HTTP: the same bytes as on disk, the same role checks as tiles,
byte ranges, CORS for the configured origins only, and signed links that stay in their lane."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings
from django.test import Client

from annotations.layer_names import LayerName
from annotations.models import Membership
from annotations.store_http import LINK_SECONDS, _Unsatisfiable, byte_range
from annotations.strokes import layer_write_slices
from emportal.tokens.services import token_create
from tests.factories import make_volume

pytestmark = pytest.mark.django_db

NEUROGLANCER = "https://neuroglancer-demo.appspot.com"
CHUNK = "0/0/0/0"  # level 0, the first chunk (zarr v2, "/" separated keys)


@pytest.fixture
def volume(cast: Any, tmp_path: Path) -> Any:
    return make_volume(cast.project, tmp_path)


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _store(volume: Any) -> Path:
    return Path(settings.MEDIA_ROOT) / volume.zarr_path


def _body(response: Any) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def _link(client: Client, volume: Any) -> str:
    response = client.get(f"/api/volumes/{volume.pk}/store-link/")
    assert response.status_code == 200, response.content
    url = response.json()["url"]
    assert url.startswith("http://testserver/stores/") and url.endswith("/")
    return url.removeprefix("http://testserver")


def test_a_range_read_of_a_chunk_equals_the_file_bytes(cast: Any, volume: Any) -> None:
    raw = (_store(volume) / CHUNK).read_bytes()
    assert len(raw) > 100
    response = _client(cast.viewer).get(f"/api/volumes/{volume.pk}/store/{CHUNK}", HTTP_RANGE="bytes=10-99")
    assert response.status_code == 206
    assert _body(response) == raw[10:100]
    assert response["Content-Range"] == f"bytes 10-99/{len(raw)}"
    assert response["Content-Length"] == "90" and response["Accept-Ranges"] == "bytes"
    whole = _client(cast.viewer).get(f"/api/volumes/{volume.pk}/store/{CHUNK}")
    assert whole.status_code == 200 and _body(whole) == raw
    assert whole["Content-Type"] == "application/octet-stream"
    tail = _client(cast.viewer).get(f"/api/volumes/{volume.pk}/store/{CHUNK}", HTTP_RANGE="bytes=-7")
    assert tail.status_code == 206 and _body(tail) == raw[-7:]


def test_metadata_is_json_and_names_the_image_and_its_label_layers(cast: Any, volume: Any) -> None:
    client = _client(cast.viewer)
    root = client.get(f"/api/volumes/{volume.pk}/store/.zattrs")
    assert root["Content-Type"] == "application/json"
    assert json.loads(_body(root))["multiscales"][0]["name"] == volume.name
    labels = json.loads(_body(client.get(f"/api/volumes/{volume.pk}/store/labels/.zattrs")))
    assert LayerName.MANUAL in labels["labels"]
    array = json.loads(_body(client.get(f"/api/volumes/{volume.pk}/store/labels/{LayerName.MANUAL}/0/.zarray")))
    assert array["shape"] == [4, 300, 520]


def test_a_painted_label_chunk_is_served_as_written_and_its_etag_changes(cast: Any, volume: Any) -> None:
    import numpy as np

    client = _client(cast.viewer)
    url = f"/api/volumes/{volume.pk}/store/labels/{LayerName.MANUAL}/0/0/0/0"
    assert client.get(url).status_code == 404  # an all-zero chunk is not stored: readers take the fill value
    layer_write_slices(volume, LayerName.MANUAL, {0: np.full((300, 520), 4, np.uint16)}, user=cast.manager)
    first = client.get(url)
    assert first.status_code == 200
    assert _body(first) == (_store(volume) / f"labels/{LayerName.MANUAL}/0/0/0/0").read_bytes()
    assert client.get(url, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
    layer_write_slices(volume, LayerName.MANUAL, {0: np.full((300, 520), 5, np.uint16)}, user=cast.manager)
    assert client.get(url, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 200


def test_head_gives_the_headers_without_the_body(cast: Any, volume: Any) -> None:
    size = (_store(volume) / CHUNK).stat().st_size
    response = _client(cast.viewer).head(f"/api/volumes/{volume.pk}/store/{CHUNK}")
    assert response.status_code == 200 and response.content == b""
    assert response["Content-Length"] == str(size) and response["Accept-Ranges"] == "bytes"


@pytest.mark.parametrize("header", ["bytes=999999999-", "bytes=5-2", "bytes=abc", "bytes=-0", "bytes=-"])
def test_a_range_outside_the_file_or_malformed_is_416(cast: Any, volume: Any, header: str) -> None:
    size = (_store(volume) / CHUNK).stat().st_size
    response = _client(cast.viewer).get(f"/api/volumes/{volume.pk}/store/{CHUNK}", HTTP_RANGE=header)
    assert response.status_code == 416 and response["Content-Range"] == f"bytes */{size}"


def test_range_parsing_clips_the_end_and_ignores_other_units_and_multiple_ranges() -> None:
    assert byte_range("bytes=0-", 10) == (0, 9)
    assert byte_range("bytes=4-1000", 10) == (4, 9)
    assert byte_range("bytes=-100", 10) == (0, 9)
    assert byte_range("items=0-1", 10) is None
    assert byte_range("bytes=0-1,4-5", 10) is None
    with pytest.raises(_Unsatisfiable):
        byte_range("bytes=10-", 10)


@pytest.mark.parametrize("role", ["viewer", "annotator", "reviewer", "manager"])
def test_every_member_reads_the_store(cast: Any, volume: Any, role: str) -> None:
    assert _client(cast.by_role(role)).get(f"/api/volumes/{volume.pk}/store/{CHUNK}").status_code == 200


def test_an_outsider_and_an_anonymous_visitor_get_404(cast: Any, volume: Any) -> None:
    url = f"/api/volumes/{volume.pk}/store/{CHUNK}"
    assert _client(cast.outsider).get(url).status_code == 404
    assert Client().get(url).status_code == 404
    assert _client(cast.outsider).get(f"/api/volumes/{volume.pk}/store-link/").status_code == 404
    assert Client().get(f"/api/volumes/{volume.pk}/store-link/").status_code == 401


def test_an_api_token_reads_the_store_and_a_bad_one_is_refused(cast: Any, volume: Any) -> None:
    _, key = token_create(cast.viewer, "script")
    url = f"/api/volumes/{volume.pk}/store/{CHUNK}"
    response = Client(HTTP_AUTHORIZATION=f"Token {key}").get(url)
    assert response.status_code == 200 and _body(response) == (_store(volume) / CHUNK).read_bytes()
    assert Client(HTTP_AUTHORIZATION="Token not-a-token").get(url).status_code == 403
    _, outsider_key = token_create(cast.outsider, "script")
    assert Client(HTTP_AUTHORIZATION=f"Token {outsider_key}").get(url).status_code == 404


@pytest.mark.parametrize("path", ["../../../etc/passwd", "..%2F..%2Fsecret_key", "0/../0/.zarray", "0//0",
                                  ".hidden", "labels/.manual.partial-abc/.zattrs", "0/0/0/0.abc.partial", "0", ""])
def test_paths_outside_the_store_or_hidden_are_404(cast: Any, volume: Any, path: str) -> None:
    (_store(volume) / ".hidden").write_text("x")
    (_store(volume) / "0/0/0/0.abc.partial").write_text("x")
    assert _client(cast.viewer).get(f"/api/volumes/{volume.pk}/store/{path}").status_code == 404


def test_a_symlink_out_of_the_store_is_not_followed(cast: Any, volume: Any, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not serve")
    os.symlink(secret, _store(volume) / "leak")
    os.symlink(tmp_path, _store(volume) / "outside")
    client = _client(cast.viewer)
    assert client.get(f"/api/volumes/{volume.pk}/store/leak").status_code == 404
    assert client.get(f"/api/volumes/{volume.pk}/store/outside/secret.txt").status_code == 404


def test_cors_headers_go_to_the_configured_origins_only(cast: Any, volume: Any, settings: Any) -> None:
    assert settings.EMPORTAL_CORS_ORIGINS == [NEUROGLANCER]  # the default
    client = _client(cast.viewer)
    url = f"/api/volumes/{volume.pk}/store/{CHUNK}"
    allowed = client.get(url, HTTP_ORIGIN=NEUROGLANCER)
    assert allowed["Access-Control-Allow-Origin"] == NEUROGLANCER
    assert "Content-Range" in allowed["Access-Control-Expose-Headers"]
    assert "Access-Control-Allow-Credentials" not in allowed
    assert "Origin" in allowed["Vary"]
    other = client.get(url, HTTP_ORIGIN="https://evil.example")
    assert other.status_code == 200 and "Access-Control-Allow-Origin" not in other
    preflight = Client().options(url, HTTP_ORIGIN=NEUROGLANCER, HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
                                 HTTP_ACCESS_CONTROL_REQUEST_HEADERS="range")
    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == NEUROGLANCER
    assert "GET" in preflight["Access-Control-Allow-Methods"] and "Range" in preflight["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Origin" not in Client().options(url, HTTP_ORIGIN="https://evil.example")
    settings.EMPORTAL_CORS_ORIGINS = ["https://webknossos.example"]
    assert "Access-Control-Allow-Origin" not in client.get(url, HTTP_ORIGIN=NEUROGLANCER)
    assert client.get(url, HTTP_ORIGIN="https://webknossos.example")["Access-Control-Allow-Origin"] == \
        "https://webknossos.example"


def test_writes_are_refused(cast: Any, volume: Any) -> None:
    client = _client(cast.manager)
    for method in ("post", "put", "delete"):
        assert getattr(client, method)(f"/api/volumes/{volume.pk}/store/{CHUNK}").status_code == 405
    assert (_store(volume) / CHUNK).exists()


# --------------------------------------------------------------------------- signed links


def test_a_signed_link_reads_the_store_without_cookie_or_header(cast: Any, volume: Any) -> None:
    base = _link(_client(cast.viewer), volume)
    raw = (_store(volume) / CHUNK).read_bytes()
    response = Client().get(base + CHUNK, HTTP_RANGE="bytes=3-20", HTTP_ORIGIN=NEUROGLANCER)
    assert response.status_code == 206 and _body(response) == raw[3:21]
    assert response["Access-Control-Allow-Origin"] == NEUROGLANCER
    labels = Client().get(base + f"labels/{LayerName.MANUAL}/.zattrs")
    assert json.loads(_body(labels))["image-label"]["source"] == {"image": "../../"}


def test_the_store_link_describes_the_store(cast: Any, volume: Any) -> None:
    body = _client(cast.viewer).get(f"/api/volumes/{volume.pk}/store-link/").json()
    assert body["zarr_format"] == 2 and body["ngff_version"] == "0.4"
    assert LayerName.MANUAL in body["layers"]
    assert body["neuroglancer"] == "https://neuroglancer-demo.appspot.com/"


def test_a_signed_link_expires(cast: Any, volume: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    base = _link(_client(cast.viewer), volume)
    assert Client().get(base + ".zattrs").status_code == 200
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + LINK_SECONDS + 5)
    assert Client().get(base + ".zattrs").status_code == 404


def test_a_signed_link_cannot_reach_another_volume(cast: Any, volume: Any, tmp_path: Path) -> None:
    import base64

    other = make_volume(cast.project, tmp_path, name="other")
    base = _link(_client(cast.viewer), volume)
    token = base.split("/")[2]
    payload, stamp, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert data["v"] == volume.pk
    data["v"] = other.pk
    forged = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")
    assert Client().get(f"/stores/{forged}.{stamp}.{signature}/.zattrs").status_code == 404
    assert Client().get(f"/stores/{token}/../{other.pk}.ome.zarr/.zattrs").status_code == 404
    # its own volume's name, not the other's
    assert json.loads(_body(Client().get(base + ".zattrs")))["multiscales"][0]["name"] == volume.name


def test_a_signed_link_stops_when_the_user_leaves_the_project_or_changes_password(cast: Any, volume: Any) -> None:
    viewer_base = _link(_client(cast.viewer), volume)
    annotator_base = _link(_client(cast.annotator), volume)
    Membership.objects.filter(user=cast.viewer, project=cast.project).delete()
    assert Client().get(viewer_base + ".zattrs").status_code == 404
    assert Client().get(annotator_base + ".zattrs").status_code == 200
    cast.annotator.set_password("a new one")
    cast.annotator.save()
    assert Client().get(annotator_base + ".zattrs").status_code == 404


def test_a_garbled_link_is_404(volume: Any) -> None:
    for token in ("nothing", "a.b.c", "e30.1abc.xyz"):
        assert Client().get(f"/stores/{token}/.zattrs").status_code == 404


def test_a_range_read_through_daphne_equals_the_file(live_app: str, cast: Any, tmp_path: Path) -> None:
    volume = make_volume(cast.project, tmp_path)
    _, key = token_create(cast.viewer, "script")
    raw = (_store(volume) / CHUNK).read_bytes()
    session = requests.Session()
    session.headers["Authorization"] = f"Token {key}"
    part = session.get(f"{live_app}/api/volumes/{volume.pk}/store/{CHUNK}", headers={"Range": "bytes=100-"},
                       timeout=10)
    assert part.status_code == 206 and part.content == raw[100:]
    link = session.get(f"{live_app}/api/volumes/{volume.pk}/store-link/", timeout=10).json()["url"]
    assert link.startswith(live_app + "/stores/")
    whole = requests.get(link + CHUNK, headers={"Origin": NEUROGLANCER}, timeout=10)
    assert whole.status_code == 200 and whole.content == raw
    assert whole.headers["Access-Control-Allow-Origin"] == NEUROGLANCER
    head = requests.head(link + CHUNK, timeout=10)
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(raw)) and head.content == b""
