"""API tokens: the same answers as the session on REST and tiles for every role, no CSRF,
revoked at once, managed on the account page and over REST, accepted on websockets."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client

from annotations.models import Role
from emportal.tokens.models import ApiToken
from emportal.tokens.services import token_create
from tests.annotations.test_permissions import ROLES, ROUTES, _call, _url, world  # noqa: F401  (fixture)
from tests.factories import make_volume

pytestmark = pytest.mark.django_db

# GET, POST and PUT routes, plain tile views and file downloads, at each rank; none changes
# state (the session asks second, and must find what the token found).
SAMPLE = ["api-projects", "api-volume", "api-volume-voxel-size", "api-strokes", "api-retrain", "api-tile",
          "api-label-tile", "api-volume-diff-tile", "api-report-download", "api-reviews", "api-jobs",
          "api-model-activate"]


def _token_client(key: str) -> Client:
    # enforce_csrf_checks: what passes here passes without any CSRF token.
    return Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Token {key}")


def _session_client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_token_gets_every_role_the_answers_the_session_gets(world: dict[str, Any]) -> None:
    cast = world["cast"]
    for name in SAMPLE:
        route, url = ROUTES[name], _url(world, name)
        for who in [*ROLES, "outsider"]:
            user = cast.by_role(who)
            _, key = token_create(user, f"{who} script")
            by_session = _call(_session_client(user), route, url)
            by_token = _call(_token_client(key), route, url)
            assert by_token == by_session, f"{who} on {name}: token {by_token}, session {by_session}"
            if who == "outsider":
                assert by_token == (200 if name == "api-projects" else 404), f"outsider on {name}"
            elif Role.from_name(who) < Role.from_name(route.min_role):
                assert by_token == 403, f"{who} on {name}"
            else:
                assert by_token < 500 and by_token not in (401, 403), f"{who} on {name}: {by_token}"


def test_a_token_sees_only_its_users_projects(cast: Any) -> None:
    _, key = token_create(cast.outsider, "laptop")
    names = [p["name"] for p in _token_client(key).get("/api/projects/").json()]
    assert len(names) == 1 and cast.project.name not in names


def test_a_revoked_token_stops_working_at_once(cast: Any, tmp_path: Any) -> None:
    volume = make_volume(cast.project, tmp_path)
    token, key = token_create(cast.annotator, "cluster")
    client = _token_client(key)
    tile = f"/api/volumes/{volume.pk}/tiles/z/0/0/0/0.png"
    assert client.get(f"/api/volumes/{volume.pk}/").status_code == 200
    answer = client.get(tile)
    assert answer.status_code == 200 and "Authorization" in answer["Vary"]  # no cache shares it between users
    assert client.delete(f"/api/tokens/{token.pk}/").status_code == 204  # a token may revoke itself
    assert not ApiToken.objects.filter(pk=token.pk).exists()
    refused = client.get(f"/api/volumes/{volume.pk}/")
    assert refused.status_code == 401 and refused["WWW-Authenticate"] == "Token"
    assert refused.json()["error"]["message"] == "invalid or revoked token"
    assert client.get(tile).status_code == 403
    assert Client(HTTP_AUTHORIZATION="Token emp_made-up").get(tile).status_code == 403
    assert Client(HTTP_AUTHORIZATION="Token").get("/api/projects/").status_code == 401


def test_a_deactivated_users_tokens_stop_working(cast: Any, tmp_path: Any) -> None:
    volume = make_volume(cast.project, tmp_path)
    _, key = token_create(cast.viewer, "old laptop")
    cast.viewer.is_active = False
    cast.viewer.save(update_fields=["is_active"])
    assert _token_client(key).get("/api/projects/").status_code == 401
    assert _token_client(key).get(f"/api/volumes/{volume.pk}/tiles/z/0/0/0/0.png").status_code == 403


def test_a_token_is_the_tokens_user_even_beside_another_session(cast: Any, tmp_path: Any) -> None:
    volume = make_volume(cast.project, tmp_path)
    _, key = token_create(cast.outsider, "laptop")
    client = _session_client(cast.manager)
    client.defaults["HTTP_AUTHORIZATION"] = f"Token {key}"
    assert client.get(f"/api/volumes/{volume.pk}/").status_code == 404
    assert client.get(f"/api/volumes/{volume.pk}/tiles/z/0/0/0/0.png").status_code == 404


def test_csrf_is_not_needed_with_a_token_but_still_with_a_session(cast: Any) -> None:
    url = f"/api/projects/{cast.project.pk}/members/"
    body = {"username": "viewer", "role": "reviewer"}
    _, key = token_create(cast.manager, "admin script")
    assert _token_client(key).post(url, body, content_type="application/json").status_code == 201
    assert cast.viewer.memberships.get(project=cast.project).role == Role.REVIEWER
    session = Client(enforce_csrf_checks=True)
    session.force_login(cast.manager)
    refused = session.post(url, {"username": "viewer", "role": "viewer"}, content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]["message"]
    assert cast.viewer.memberships.get(project=cast.project).role == Role.REVIEWER


def test_anonymous_and_basic_requests_are_asked_for_a_token(cast: Any) -> None:
    for client in (Client(), Client(HTTP_AUTHORIZATION="Basic dmlld2VyOnNlY3JldA==")):
        response = client.get("/api/projects/")
        assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"


def test_tokens_are_created_shown_once_listed_and_revoked_over_rest(cast: Any) -> None:
    session = _session_client(cast.annotator)
    created = session.post("/api/tokens/", {"name": "notebook"}, content_type="application/json")
    assert created.status_code == 201
    key = created.json()["key"]
    assert key.startswith("emp_") and len(key) == 44
    row = ApiToken.objects.get(pk=created.json()["id"])
    assert row.user == cast.annotator and row.name == "notebook" and key not in (row.digest, row.prefix)
    assert key.startswith(row.prefix)
    token_create(cast.viewer, "someone else's")
    listed = _token_client(key).get("/api/tokens/").json()
    assert [t["name"] for t in listed] == ["notebook"] and "key" not in listed[0] and "digest" not in listed[0]
    assert listed[0]["last_used"] is not None
    # A token cannot mint tokens; only the logged-in session can.
    refused = _token_client(key).post("/api/tokens/", {"name": "successor"}, content_type="application/json")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "session_required"
    assert session.post("/api/tokens/", {"name": "  "}, content_type="application/json").status_code == 400
    assert ApiToken.objects.filter(user=cast.annotator).count() == 1


def test_nobody_revokes_another_users_token(cast: Any) -> None:
    token, key = token_create(cast.viewer, "mine")
    assert _session_client(cast.manager).delete(f"/api/tokens/{token.pk}/").status_code == 404
    page = _session_client(cast.manager).post("/account/", {"action": "revoke", "token": token.pk})
    assert page.status_code == 404
    assert _token_client(key).get("/api/projects/").status_code == 200


def test_the_account_page_creates_a_token_shows_it_once_and_revokes_it(cast: Any) -> None:
    client = Client(enforce_csrf_checks=False)
    client.force_login(cast.reviewer)
    assert b'href="/account/"' in client.get("/").content  # linked from the page header
    created = client.post("/account/", {"action": "create", "name": "microscope PC"})
    assert created.status_code == 200
    key = created.context["new_key"]
    assert key.encode() in created.content and b"microscope PC" in created.content
    later = client.get("/account/")
    assert b"microscope PC" in later.content and key.encode() not in later.content
    assert _token_client(key).get("/api/projects/").status_code == 200
    token = ApiToken.objects.get(user=cast.reviewer)
    assert client.post("/account/", {"action": "revoke", "token": token.pk}).status_code == 302
    assert not ApiToken.objects.filter(user=cast.reviewer).exists()
    assert _token_client(key).get("/api/projects/").status_code == 401
    empty = client.post("/account/", {"action": "create", "name": ""})
    assert empty.status_code == 400 and b"give the token a name" in empty.content


# ------------------------------------------------------------------ websockets, through Daphne
async def _handshake(url: str, **kwargs: Any) -> tuple[Any, Any]:
    """(the first message or the close code, the subprotocol answered), or the handshake's HTTP status."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        try:
            async with session.ws_connect(url, **kwargs) as ws:
                message = await asyncio.wait_for(ws.receive(), timeout=20)
                if message.type == aiohttp.WSMsgType.TEXT:
                    return message.json(), ws.protocol
                return ws.close_code, ws.protocol
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status, None


@pytest.mark.services
def test_websockets_accept_a_token_and_refuse_a_bad_one(live_app: str, cast: Any, tmp_path: Any) -> None:
    volume = make_volume(cast.project, tmp_path)
    ws = live_app.replace("http://", "ws://")
    url = f"{ws}/ws/volumes/{volume.pk}/"
    _, key = token_create(cast.annotator, "socket script")
    token, revoked = token_create(cast.viewer, "to revoke")
    token.delete()
    _, outsider = token_create(cast.outsider, "elsewhere")

    hello, protocol = asyncio.run(_handshake(url, headers={"Authorization": f"Token {key}"}))
    assert hello["type"] == "hello" and hello["user"] == "annotator" and hello["role"] == "annotator"
    # Browsers: the key as the subprotocol after "emportal.token"; the answer names only "emportal.token".
    hello, protocol = asyncio.run(_handshake(url, protocols=("emportal.token", key)))
    assert hello["user"] == "annotator" and protocol == "emportal.token"
    assert asyncio.run(_handshake(url, headers={"Authorization": f"Token {revoked}"})) == (403, None)
    assert asyncio.run(_handshake(url, protocols=("emportal.token", "emp_made-up"))) == (403, None)
    assert asyncio.run(_handshake(url, protocols=("emportal.token",))) == (403, None)
    # Without a token the session path and its origin check are unchanged.
    cookie = _cookie(cast.annotator)
    assert asyncio.run(_handshake(url, headers={"Cookie": cookie}))[0] == 403  # no Origin
    hello, _ = asyncio.run(_handshake(url, headers={"Cookie": cookie, "Origin": "http://127.0.0.1"}))
    assert hello["user"] == "annotator"
    # Another project's member is refused by the consumer's role check, as with the session.
    assert asyncio.run(_handshake(url, headers={"Authorization": f"Token {outsider}"}))[0] == 403
    outsider_session = {"Cookie": _cookie(cast.outsider), "Origin": "http://127.0.0.1"}
    assert asyncio.run(_handshake(url, headers=outsider_session))[0] == 403


def _cookie(user: Any) -> str:
    session = _session_client(user)
    return f"{django_settings.SESSION_COOKIE_NAME}={session.cookies[django_settings.SESSION_COOKIE_NAME].value}"
