"""The permissions matrix: every route of the URL conf, tried as every role, an outsider
and an anonymous visitor. A route missing from ROUTES fails the suite, so a new
endpoint cannot escape the matrix."""
from __future__ import annotations

from typing import Any, NamedTuple

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from annotations.models import Role
from annotations.reviews.models import Comment, ReviewAssignment
from emportal.jobs.models import Job
from segmentation.job_kinds import SEGMENT
from segmentation.models import FeatureReport, ModelVersion, SegmentationRun
from tests.factories import make_volume

pytestmark = pytest.mark.django_db

ROLES = ["viewer", "annotator", "reviewer", "manager"]


class Route(NamedTuple):
    method: str
    kwargs: dict[str, Any]  # values naming objects of the world fixture: "p", "v", "j", "r", "m", "m2", "run", "rv", "c"
    min_role: str
    body: Any = None
    may_404: bool = False   # allowed users may still get 404 (e.g. a report without files)


ROUTES: dict[str, Route] = {
    # annotations
    "api-projects": Route("get", {}, "viewer"),
    "api-members": Route("post", {"project_id": "p"}, "manager", {"username": "nobody", "role": "viewer"}),
    "api-member": Route("put", {"project_id": "p", "username": "viewer"}, "manager", {"role": "viewer"}),
    "api-classes": Route("post", {"project_id": "p"}, "manager", {"name": ""}),
    "api-class": Route("patch", {"project_id": "p", "class_id": 1}, "manager", {}, may_404=True),
    "api-volumes": Route("get", {"project_id": "p"}, "viewer"),
    "api-volume-import-path": Route("post", {"project_id": "p"}, "annotator", {}),
    "api-volume": Route("get", {"volume_id": "v"}, "viewer"),
    "api-volume-voxel-size": Route("put", {"volume_id": "v"}, "manager", {"voxel_size_nm": [0, 1, 1]}),
    "api-strokes": Route("post", {"volume_id": "v"}, "annotator", {"uuid": "not-a-uuid"}),
    "api-stroke-undo": Route("post", {"volume_id": "v", "uuid": "00000000-0000-0000-0000-000000000000"},
                             "annotator", may_404=True),
    "api-stroke-redo": Route("post", {"volume_id": "v", "uuid": "00000000-0000-0000-0000-000000000000"},
                             "annotator", may_404=True),
    "api-label-import": Route("post", {"volume_id": "v"}, "annotator", {"path": "nowhere.tif"}),
    "api-complete-slices": Route("post", {"volume_id": "v"}, "annotator", {"axis": "z", "index": 0}),
    "api-layer-value": Route("get", {"volume_id": "v", "layer": "manual"}, "viewer"),
    "api-layer-mesh": Route("get", {"volume_id": "v", "layer": "manual"}, "viewer", may_404=True),
    "api-tile": Route("get", {"volume_id": "v", "axis": "z", "index": 0, "level": 0, "ty": 0, "tx": 0,
                              "fmt": "png"}, "viewer"),
    "api-label-tile": Route("get", {"volume_id": "v", "layer": "manual", "axis": "x", "index": 3, "level": 0,
                                    "ty": 0, "tx": 0, "fmt": "png"}, "viewer"),
    "api-volume-store": Route("get", {"volume_id": "v", "path": ".zattrs"}, "viewer"),
    "api-volume-store-link": Route("get", {"volume_id": "v"}, "viewer"),
    # jobs
    "api-jobs": Route("get", {"project_id": "p"}, "viewer"),
    "api-job": Route("get", {"job_id": "j"}, "viewer"),
    "api-job-cancel": Route("post", {"job_id": "j"}, "annotator"),
    # models, segmentation, cells, suggestions
    "api-models": Route("get", {"project_id": "p"}, "viewer"),
    "api-model": Route("get", {"model_id": "m"}, "viewer"),
    "api-model-activate": Route("post", {"model_id": "m"}, "annotator"),
    "api-model-compare": Route("get", {"model_id": "m", "other_id": "m2"}, "viewer"),
    "api-model-download": Route("get", {"model_id": "m"}, "viewer", may_404=True),  # the world's weights are no file
    "api-model-onnx": Route("get", {"model_id": "m"}, "viewer", may_404=True),
    "api-model-import": Route("post", {"project_id": "p"}, "annotator", {}),
    "api-retrain": Route("post", {"volume_id": "v"}, "annotator", {"minutes": "not a number"}),
    "api-pretrain": Route("post", {"project_id": "p"}, "annotator", {"minutes": "not a number"}),
    "api-segment": Route("post", {"volume_id": "v"}, "annotator", {"model": "not a number"}),
    "api-cells": Route("post", {"volume_id": "v"}, "annotator", {"flow": "bogus"}),
    "api-suggestions": Route("get", {"volume_id": "v"}, "viewer"),
    "api-suggestion-dismiss": Route("post", {"run_id": "run", "index": 0}, "annotator", may_404=True),
    "api-thumbnail": Route("get", {"volume_id": "v"}, "viewer"),
    "api-accept-prediction": Route("post", {"volume_id": "v"}, "annotator", {}, may_404=True),
    # reports
    "api-volume-reports": Route("get", {"volume_id": "v"}, "viewer"),
    "api-project-reports": Route("get", {"project_id": "p"}, "viewer"),
    "api-report": Route("get", {"report_id": "r"}, "viewer"),
    "api-report-cells": Route("get", {"report_id": "r"}, "viewer", may_404=True),
    "api-report-download": Route("get", {"report_id": "r", "fmt": "csv"}, "viewer", may_404=True),
    "api-report-meshes": Route("get", {"report_id": "r"}, "viewer", may_404=True),
    "api-report-cell-mesh": Route("get", {"report_id": "r", "cell_id": 1}, "viewer", may_404=True),
    "api-report-cell-ply": Route("get", {"report_id": "r", "cell_id": 1, "part": "nucleus"}, "viewer",
                                 may_404=True),
    "api-layer-tiff": Route("get", {"volume_id": "v", "layer": "manual"}, "viewer"),
    "api-layer-zarr-zip": Route("get", {"volume_id": "v", "layer": "manual"}, "viewer"),
    # team review
    "api-reviews": Route("get", {"project_id": "p"}, "viewer"),
    "api-reviews-summary": Route("get", {"project_id": "p"}, "viewer"),
    "api-review": Route("get", {"review_id": "rv"}, "viewer"),
    "api-review-transition": Route("post", {"review_id": "rv"}, "reviewer", {"action": "start"}),
    "api-review-items": Route("post", {"review_id": "rv"}, "reviewer",
                              {"kind": "slice", "key": 0, "decision": "approve"}),
    "api-volume-comments": Route("get", {"volume_id": "v"}, "viewer"),
    "api-comment-resolve": Route("post", {"comment_id": "c"}, "annotator"),
    "api-comment-reopen": Route("post", {"comment_id": "c"}, "annotator"),
    "api-volume-diff": Route("get", {"volume_id": "v"}, "viewer"),
    "api-volume-diff-tile": Route("get", {"volume_id": "v", "axis": "z", "index": 0, "level": 0, "ty": 0, "tx": 0},
                                  "viewer"),
    "api-volume-audit": Route("get", {"volume_id": "v"}, "viewer"),
    # pages
    "home": Route("get", {}, "viewer"),
    "project": Route("get", {"project_id": "p"}, "viewer"),
    "jobs": Route("get", {"project_id": "p"}, "viewer"),
    "volume": Route("get", {"volume_id": "v"}, "viewer"),
    "volume-results": Route("get", {"volume_id": "v"}, "viewer"),
    "project-results": Route("get", {"project_id": "p"}, "viewer"),
    "report-cell-3d": Route("get", {"report_id": "r", "cell_id": 1}, "viewer", may_404=True),
    "reviews-dashboard": Route("get", {"project_id": "p"}, "viewer"),
    "volume-audit": Route("get", {"volume_id": "v"}, "viewer"),
    "notifications": Route("get", {}, "viewer"),
    # a user's own API tokens (tests/emportal/test_tokens.py)
    "account": Route("get", {}, "viewer"),
    "api-tokens": Route("get", {}, "viewer"),
}
# Routes outside the per-project matrix, each with its reason.
PUBLIC = {"login", "logout", "schema", "api-docs", "api-redoc"}  # the login form, logging out, the API description
# A user's own notifications belong to no project (tested in tests/annotations/reviews/).
PUBLIC |= {"api-notifications", "api-notifications-read"}
# Revoking an API token names the user's own token, not a project's object; another user's
# token is a 404 (tests/emportal/test_tokens.py).
PUBLIC |= {"api-token"}
# A signed store link is its own credential (one volume, one member, expiring, checked against
# the membership at each request): tests/annotations/test_store_http.py.
PUBLIC |= {"store-signed"}


def _named_routes(patterns: list[Any], prefix: str = "") -> dict[str, str]:
    found: dict[str, str] = {}
    for entry in patterns:
        if isinstance(entry, URLResolver):
            if entry.app_name == "admin":
                continue  # Django admin: staff only, Django's own checks
            found.update(_named_routes(entry.url_patterns, prefix + str(entry.pattern)))
        elif isinstance(entry, URLPattern):
            found[entry.name or "?"] = prefix + str(entry.pattern)
    return found


def test_every_route_of_the_url_conf_is_in_the_matrix() -> None:
    routes = _named_routes(get_resolver().url_patterns)
    assert "?" not in routes, f"an unnamed route: {routes.get('?')}"
    missing = set(routes) - set(ROUTES) - PUBLIC
    assert not missing, f"routes without an expected answer per role: {sorted(missing)}"
    assert not set(ROUTES) - set(routes), "the matrix names routes that no longer exist"


@pytest.fixture
def world(cast: Any, tmp_path: Any) -> dict[str, Any]:
    volume = make_volume(cast.project, tmp_path)
    job = Job.objects.create(project=cast.project, volume=volume, kind=SEGMENT)
    model = ModelVersion.objects.create(project=cast.project, volume=volume, weights="models/none.pt")
    other = ModelVersion.objects.create(project=cast.project, volume=volume, weights="models/none2.pt")
    report = FeatureReport.objects.create(volume=volume, labels_layer="manual", cells_layer="manual")
    run = SegmentationRun.objects.create(volume=volume, model_version=model)
    review = ReviewAssignment.objects.create(project=cast.project, volume=volume, layer=volume.layers.get(name="manual"),
                                             z0=0, z1=1, reviewer=cast.reviewer, fixer=cast.annotator)
    review.items.create(kind="slice", key=0)
    comment = Comment.objects.create(volume=volume, z=0, y=0, x=0, text="here", author=cast.annotator)
    ids = {"p": cast.project.pk, "v": volume.pk, "j": job.pk, "r": report.pk, "m": model.pk, "m2": other.pk,
           "run": run.pk, "rv": review.pk, "c": comment.pk}
    return {"cast": cast, "ids": ids}


def _url(world: dict[str, Any], name: str) -> str:
    kwargs = {k: world["ids"].get(v, v) if isinstance(v, str) else v for k, v in ROUTES[name].kwargs.items()}
    return reverse(name, kwargs=kwargs)


def _call(client: Client, route: Route, url: str) -> int:
    if route.method == "get":
        return client.get(url).status_code
    return getattr(client, route.method)(url, route.body or {}, content_type="application/json").status_code


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_each_role_gets_the_answer_its_rank_deserves(world: dict[str, Any], name: str) -> None:
    route, url = ROUTES[name], _url(world, name)
    for role in ROLES:
        client = Client()
        client.force_login(world["cast"].by_role(role))
        status = _call(client, route, url)
        if Role.from_name(role) >= Role.from_name(route.min_role):
            assert status not in (401, 403) and (route.may_404 or status != 404), f"{role}: {status} for {url}"
            assert status < 500, f"{role}: {status} for {url}"
        else:
            assert status == 403, f"{role}: {status} for {url}"
    client = Client()
    client.force_login(world["cast"].outsider)
    if name not in ("api-projects", "home", "notifications", "account", "api-tokens"):  # lists: only their own
        assert _call(client, route, url) == 404, f"outsider: {url}"


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_anonymous_visitors_learn_nothing(world: dict[str, Any], name: str) -> None:
    url = _url(world, name)
    status = _call(Client(), ROUTES[name], url)
    # 401 (with "WWW-Authenticate: Token") from DRF, 403/404 from the plain tile views
    assert status in ((401, 403, 404) if url.startswith("/api/") else (302,)), f"{status} for {url}"


def test_project_list_shows_only_the_users_projects(cast: Any) -> None:
    client = Client()
    client.force_login(cast.outsider)
    names = [p["name"] for p in client.get("/api/projects/").json()]
    assert cast.project.name not in names and len(names) == 1


def test_a_manager_adds_a_member_who_then_sees_the_project(cast: Any) -> None:
    from tests.factories import UserFactory

    newcomer = UserFactory.create(username="newcomer")
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
