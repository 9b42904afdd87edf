"""Every endpoint kind against every role: outsiders get 404, lower roles 403."""
from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from annotations.models import Role
from segmentation.models import Job
from tests.factories import make_volume

pytestmark = pytest.mark.django_db

ROLES = ["viewer", "annotator", "reviewer", "manager"]

# (method, url template, minimum role, body, answer when allowed)
ENDPOINTS = [
    ("get", "/api/projects/{p}/members/", "viewer", None, 200),
    ("post", "/api/projects/{p}/members/", "manager", {"username": "nobody", "role": "viewer"}, 400),
    ("get", "/api/projects/{p}/volumes/", "viewer", None, 200),
    ("post", "/api/projects/{p}/volumes/import-path/", "annotator", {}, 400),
    ("get", "/api/volumes/{v}/", "viewer", None, 200),
    ("get", "/api/volumes/{v}/tiles/z/0/0/0/0.png", "viewer", None, 200),
    ("get", "/api/volumes/{v}/layers/manual/tiles/x/3/0/0/0.png", "viewer", None, 200),
    ("get", "/api/projects/{p}/jobs/", "viewer", None, 200),
    ("get", "/api/jobs/{j}/", "viewer", None, 200),
    ("post", "/api/jobs/{j}/cancel/", "annotator", None, 200),
    ("get", "/projects/{p}/", "viewer", None, 200),
    ("get", "/projects/{p}/jobs/", "viewer", None, 200),
    ("get", "/volumes/{v}/", "viewer", None, 200),
]


@pytest.fixture
def world(cast: Any, tmp_path: Any) -> dict[str, Any]:
    volume = make_volume(cast.project, tmp_path)
    job = Job.objects.create(project=cast.project, volume=volume, kind=Job.Kind.SEGMENT)
    return {"cast": cast, "ids": {"p": cast.project.pk, "v": volume.pk, "j": job.pk}}


def _call(client: Client, method: str, url: str, body: Any) -> int:
    if method == "get":
        return client.get(url).status_code
    return client.post(url, body or {}, content_type="application/json").status_code


@pytest.mark.parametrize("method,template,min_role,body,allowed", ENDPOINTS)
def test_each_role_gets_the_answer_its_rank_deserves(world: dict[str, Any], method: str, template: str,
                                                      min_role: str, body: Any, allowed: int) -> None:
    url = template.format(**world["ids"])
    answers = {}
    for role in ROLES + ["outsider"]:
        client = Client()
        client.force_login(world["cast"].by_role(role))
        answers[role] = _call(client, method, url, body)
    expected = {role: (allowed if Role.from_name(role) >= Role.from_name(min_role) else 403) for role in ROLES}
    expected["outsider"] = 404
    assert answers == expected


@pytest.mark.parametrize("method,template,min_role,body,allowed", ENDPOINTS)
def test_anonymous_users_learn_nothing(world: dict[str, Any], method: str, template: str, min_role: str,
                                       body: Any, allowed: int) -> None:
    url = template.format(**world["ids"])
    status = _call(Client(), method, url, body)
    if url.startswith("/api/"):
        assert status in (403, 404)
    else:
        assert status == 302


def test_project_list_shows_only_the_users_projects(cast: Any) -> None:
    client = Client()
    client.force_login(cast.outsider)
    names = [p["name"] for p in client.get("/api/projects/").json()]
    assert cast.project.name not in names and len(names) == 1


def test_a_manager_adds_a_member_who_then_sees_the_project(cast: Any) -> None:
    from tests.factories import UserFactory

    newcomer = UserFactory(username="newcomer")
    client = Client()
    client.force_login(cast.manager)
    response = client.post(f"/api/projects/{cast.project.pk}/members/", {"username": "newcomer", "role": "annotator"},
                           content_type="application/json")
    assert response.status_code == 201
    assert newcomer.memberships.get(project=cast.project).role == Role.ANNOTATOR


def test_errors_share_one_json_shape(cast: Any) -> None:
    client = Client()
    client.force_login(cast.manager)
    body = client.post(f"/api/projects/{cast.project.pk}/members/", {"username": "ghost", "role": "viewer"},
                       content_type="application/json").json()
    assert body["error"]["code"] == "unknown_user" and "ghost" in body["error"]["message"]
