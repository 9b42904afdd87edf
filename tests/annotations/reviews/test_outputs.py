"""Every answer of the review API has exactly the fields and types its OpenAPI schema declares,
including the parts the fuzzer's small world does not reach: decided items and history,
overdue work, replies, per-cell Dice, audit rows of strokes and review actions.

A bad query parameter is a 400 with a JSON error naming it, never a 404 or a 500.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest

from annotations.models import LabelLayer
from annotations.reviews.models import ReviewAssignment
from tests.annotations.reviews.conftest import SHAPE, new_review, write_layer
from tests.openapi import assert_answer_matches_schema

pytestmark = pytest.mark.django_db

REVIEW = "/api/reviews/{review_id}/"


def test_an_assignment_with_decided_items_history_and_a_lost_cell_matches_its_schema(api: Any, volume: Any) -> None:
    review = new_review(api, volume)
    api.post("reviewer", f"/api/reviews/{review['id']}/transition/", {"action": "start"})
    decided = api.post("reviewer", f"/api/reviews/{review['id']}/items/",
                       {"kind": "slice", "key": 2, "decision": "request_changes", "comment": "gap", "z": 2, "y": 3,
                        "x": 4})
    assert decided.status_code == 200 and decided.json()["item"]["state"] == "changes_requested"
    assert_answer_matches_schema(decided, "post", "/api/reviews/{review_id}/items/")
    detail = api.get("viewer", f"/api/reviews/{review['id']}/")
    assert [e["action"] for e in detail.json()["history"]][:2] == ["review_created", "review_start"]
    assert_answer_matches_schema(detail, "get", REVIEW)

    cells = new_review(api, volume, scope="cells", layer="cells_auto", cells=[7, 9])
    write_layer(volume, "cells_auto", np.zeros(SHAPE, np.uint32), kind=LabelLayer.Kind.INSTANCES)  # both gone
    detail = api.get("viewer", f"/api/reviews/{cells['id']}/")
    assert [i["center"] for i in detail.json()["items"]] == [None, None]
    assert_answer_matches_schema(detail, "get", REVIEW)


def test_the_review_list_and_a_summary_with_overdue_work_match_their_schemas(api: Any, volume: Any) -> None:
    late = new_review(api, volume)
    ReviewAssignment.objects.filter(pk=late["id"]).update(due=dt.date(2001, 1, 1))
    new_review(api, volume, due=None)
    base = f"/api/projects/{volume.project_id}/reviews/"
    listed = api.get("annotator", base, mine="true", volume=volume.pk, state="open")
    assert len(listed.json()["results"]) == 2
    assert_answer_matches_schema(listed, "get", "/api/projects/{project_id}/reviews/")
    summary = api.get("viewer", base + "summary/")
    assert [a["id"] for a in summary.json()["overdue"]] == [late["id"]]
    assert summary.json()["by_person"][0]["overdue"] == 1
    assert_answer_matches_schema(summary, "get", "/api/projects/{project_id}/reviews/summary/")


def test_comment_threads_resolving_and_notifications_match_their_schemas(api: Any, volume: Any) -> None:
    base = f"/api/volumes/{volume.pk}/comments/"
    root = api.post("reviewer", base, {"z": 1, "y": 2, "x": 3, "text": "is this a membrane?", "layer": "prediction"})
    assert_answer_matches_schema(root, "post", "/api/volumes/{volume_id}/comments/")
    api.post("annotator", base, {"z": 1, "y": 2, "x": 3, "text": "yes", "parent": root.json()["id"]})
    threads = api.get("viewer", base, open="1")
    assert [len(t["replies"]) for t in threads.json()["results"]] == [1]
    assert_answer_matches_schema(threads, "get", "/api/volumes/{volume_id}/comments/")
    resolved = api.post("reviewer", f"/api/comments/{root.json()['id']}/resolve/")
    assert resolved.json()["resolved_by"] == "reviewer"
    assert_answer_matches_schema(resolved, "post", "/api/comments/{comment_id}/resolve/")

    new_review(api, volume)  # tells the fixer, annotator, they have work
    inbox = api.get("annotator", "/api/notifications/", unread="true")
    assert inbox.json()["unread"] >= 1
    assert_answer_matches_schema(inbox, "get", "/api/notifications/")
    read = api.post("annotator", "/api/notifications/read/", {"all": True})
    assert read.json()["unread"] == 0
    assert_answer_matches_schema(read, "post", "/api/notifications/read/")


def test_a_diff_of_cell_layers_and_the_audit_trail_match_their_schemas(api: Any, volume: Any) -> None:
    cells_b = np.zeros(SHAPE, np.uint32)
    cells_b[1:4, 5:15, 5:20] = 3
    write_layer(volume, "cells_b", cells_b, kind=LabelLayer.Kind.INSTANCES)
    got = api.get("viewer", f"/api/volumes/{volume.pk}/diff/", a="cells_auto", b="cells_b", z0=0, z1=SHAPE[0])
    assert {c["a"]: c["b"] for c in got.json()["cells"]} == {7: 3, 9: None}
    assert_answer_matches_schema(got, "get", "/api/volumes/{volume_id}/diff/")

    new_review(api, volume)
    trail = api.get("viewer", f"/api/volumes/{volume.pk}/audit/", limit=10, since="2000-01-01")
    assert trail.json()["results"][0]["action"] == "review_created"
    assert_answer_matches_schema(trail, "get", "/api/volumes/{volume_id}/audit/")


@pytest.mark.parametrize("url, params", [
    ("/api/projects/{project}/reviews/", {"state": "closed"}),
    ("/api/projects/{project}/reviews/", {"volume": "abc"}),
    ("/api/projects/{project}/reviews/", {"volume": "99999999999999999999"}),
    ("/api/projects/{project}/reviews/", {"mine": "maybe"}),
    ("/api/volumes/{volume}/comments/", {"open": "2"}),
    ("/api/volumes/{volume}/comments/", {"assignment": "1.5"}),
    ("/api/volumes/{volume}/diff/", {"a": "prediction", "b": "cells_auto", "z0": "x"}),
    ("/api/volumes/{volume}/audit/", {"limit": "0"}),
    ("/api/volumes/{volume}/audit/", {"limit": "many"}),
    ("/api/volumes/{volume}/audit/", {"format": "xml"}),
    ("/api/notifications/", {"unread": "yes please"}),
])
def test_a_bad_query_parameter_is_a_400_naming_it(api: Any, volume: Any, url: str, params: dict[str, str]) -> None:
    response = api.get("manager", url.format(project=volume.project_id, volume=volume.pk), **params)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid" and error["detail"]["parameter"] in params


def test_a_since_that_is_no_date_is_a_400_bad_date(api: Any, volume: Any) -> None:
    response = api.get("viewer", f"/api/volumes/{volume.pk}/audit/", since="last tuesday")
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_date"
