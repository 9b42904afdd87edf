"""Review assignments through the API: creation, every transition per role, items, notifications, dashboard."""
from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from annotations.reviews.assignments import TRANSITIONS
from annotations.reviews.models import AuditEvent, Comment, Notification, ReviewAssignment, ReviewItem
from tests.annotations.reviews.conftest import new_review

pytestmark = pytest.mark.django_db
ROLES = ["viewer", "annotator", "reviewer", "manager"]
RANK = {name: i for i, name in enumerate(ROLES)}
STATES = [s for s in ReviewAssignment.State.values]


def test_it_creates_one_item_per_slice_and_notifies_reviewer_and_fixer(api: Any, volume: Any) -> None:
    review = new_review(api, volume)
    assert [i["key"] for i in review["items"]] == [1, 2, 3]
    assert {i["kind"] for i in review["items"]} == {"slice"}
    assert review["items"][0]["center"] == [1, volume.shape_y // 2, volume.shape_x // 2]
    assert review["progress"] == {"pending": 3, "approved": 0, "changes_requested": 0, "fixed": 0, "total": 3}
    assert review["state"] == "open" and review["url"] == f"/volumes/{volume.pk}/?review={review['id']}"
    assert review["reviewer"] == "reviewer" and review["fixer"] == "annotator" and review["due"] == "2030-01-31"
    kinds = {(n.user.username, n.kind) for n in Notification.objects.all()}
    assert kinds == {("reviewer", "assigned"), ("annotator", "assigned")}
    assert AuditEvent.objects.get(action="review_created").detail["assignment"] == review["id"]


def test_a_volume_scope_covers_every_slice_and_a_cells_scope_every_listed_cell(api: Any, volume: Any) -> None:
    whole = new_review(api, volume, scope="volume", z0=None, z1=None)
    assert [i["key"] for i in whole["items"]] == list(range(volume.shape_z))
    cells = new_review(api, volume, scope="cells", layer="cells_auto", cells=[9, 7])
    assert [(i["kind"], i["key"]) for i in cells["items"]] == [("cell", 7), ("cell", 9)]
    centers = {i["key"]: i["center"] for i in cells["items"]}
    # middles of the boxes painted in the fixture, rounded
    assert centers == {7: [2, round((5 + 14) / 2), round((5 + 24) / 2)], 9: [3, round((25 + 34) / 2), round(79 / 2)]}


@pytest.mark.parametrize("change, code", [
    ({"layer": "nope"}, "unknown_layer"),
    ({"z0": 2, "z1": 99}, "off_volume"),
    ({"z0": 3, "z1": 3}, "off_volume"),
    ({"reviewer": "ghost"}, "unknown_user"),
    ({"fixer": "outsider"}, "not_member"),
    ({"reviewer": "annotator"}, "role_too_low"),
    ({"due": "31/01/2030"}, "bad_date"),
    ({"scope": "everything"}, "invalid"),
    ({"scope": "cells", "layer": "cells_auto", "cells": [7, 123]}, "unknown_cell"),
    ({"scope": "cells", "layer": "cells_auto", "cells": []}, "no_cells"),
    ({"scope": "cells", "cells": [7]}, "invalid"),  # prediction holds classes, not cells
    ({"volume": 999999}, "unknown_volume"),
])
def test_bad_input_is_refused_with_a_clear_error(api: Any, volume: Any, change: dict[str, Any], code: str) -> None:
    body = {"volume": volume.pk, "layer": "prediction", "scope": "slices", "z0": 1, "z1": 4,
            "reviewer": "reviewer", "fixer": "annotator", **change}
    response = api.post("manager", f"/api/projects/{volume.project_id}/reviews/", body)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == code
    assert not ReviewAssignment.objects.exists()


@pytest.mark.parametrize("who", ["viewer", "annotator", "reviewer"])
def test_only_managers_create_and_delete_assignments(api: Any, volume: Any, who: str) -> None:
    body = {"volume": volume.pk, "layer": "prediction", "reviewer": "reviewer", "fixer": "annotator"}
    assert api.post(who, f"/api/projects/{volume.project_id}/reviews/", body).status_code == 403
    review = new_review(api, volume)
    assert api.client(who).delete(f"/api/reviews/{review['id']}/").status_code == 403
    assert api.client("outsider").delete(f"/api/reviews/{review['id']}/").status_code == 404
    assert api.client("manager").delete(f"/api/reviews/{review['id']}/").status_code == 204
    assert not ReviewAssignment.objects.exists() and AuditEvent.objects.filter(action="review_deleted").exists()


@pytest.mark.parametrize("action", sorted(TRANSITIONS))
@pytest.mark.parametrize("who", ROLES)
def test_every_transition_is_allowed_or_refused_per_role_and_state(api: Any, volume: Any, action: str,
                                                                   who: str) -> None:
    sources, target, need = TRANSITIONS[action]
    review = new_review(api, volume)
    for state in STATES:
        ReviewAssignment.objects.filter(pk=review["id"]).update(state=state)
        response = api.post(who, f"/api/reviews/{review['id']}/transition/",
                            {"action": action, "comment": "the membrane is cut", "z": 2, "y": 3, "x": 4})
        if RANK[who] < RANK[need.label]:
            expected = 403
        else:
            expected = 200 if state in sources else 409
        assert response.status_code == expected, (state, response.content)
        now = ReviewAssignment.objects.get(pk=review["id"]).state
        assert now == (target if expected == 200 else state)
        if expected == 409:
            assert response.json()["error"]["code"] == "invalid_transition"
    outsider = api.post("outsider", f"/api/reviews/{review['id']}/transition/", {"action": action})
    assert outsider.status_code == 404


def test_requesting_changes_needs_a_comment_and_pins_it(api: Any, volume: Any) -> None:
    review = new_review(api, volume)
    url = f"/api/reviews/{review['id']}/transition/"
    assert api.post("reviewer", url, {"action": "start"}).status_code == 200
    empty = api.post("reviewer", url, {"action": "request_changes", "comment": "  "})
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "empty_comment"
    off = api.post("reviewer", url, {"action": "request_changes", "comment": "x", "z": 99, "y": 0, "x": 0})
    assert off.status_code == 400 and off.json()["error"]["code"] == "off_volume"
    ok = api.post("reviewer", url, {"action": "request_changes", "comment": "merge here", "z": 2, "y": 3, "x": 4})
    assert ok.status_code == 200 and ok.json()["state"] == "changes_requested"
    comment = Comment.objects.get()
    assert (comment.z, comment.y, comment.x, comment.text) == (2, 3, 4, "merge here")
    assert comment.assignment_id == review["id"] and comment.layer.name == "prediction"
    note = Notification.objects.get(kind="changes_requested")
    assert note.user.username == "annotator" and note.link == f"/volumes/{volume.pk}/?review={review['id']}#z=2&y=3&x=4"


def test_the_whole_loop_notifies_each_person_and_records_the_history_in_order(api: Any, volume: Any) -> None:
    review = new_review(api, volume)
    url = f"/api/reviews/{review['id']}/transition/"
    for who, body in [("reviewer", {"action": "start"}),
                      ("reviewer", {"action": "request_changes", "comment": "fix slice 2"}),
                      ("annotator", {"action": "mark_fixed"}),
                      ("reviewer", {"action": "approve"}),
                      ("manager", {"action": "reopen"})]:
        assert api.post(who, url, body).status_code == 200, body
    detail = api.get("viewer", f"/api/reviews/{review['id']}/").json()
    assert [h["action"] for h in detail["history"]] == [
        "review_created", "review_start", "comment_added", "review_request_changes", "review_mark_fixed",
        "review_approve", "review_reopen"]
    assert [h["actor"] for h in detail["history"]][1:] == ["reviewer", "reviewer", "reviewer", "annotator",
                                                            "reviewer", "manager"]
    assert detail["state"] == "in_review" and detail["progress"]["approved"] == 3
    got = sorted((n.user.username, n.kind) for n in Notification.objects.all())
    assert got == sorted([("reviewer", "assigned"), ("annotator", "assigned"), ("annotator", "changes_requested"),
                          ("reviewer", "fixed"), ("annotator", "approved"), ("manager", "approved")])


def test_items_are_decided_one_by_one_and_block_approval_while_changes_are_requested(api: Any,
                                                                                     volume: Any) -> None:
    review = new_review(api, volume)
    items, transition = f"/api/reviews/{review['id']}/items/", f"/api/reviews/{review['id']}/transition/"
    early = api.post("reviewer", items, {"kind": "slice", "key": 1, "decision": "approve"})
    assert early.status_code == 409  # the review has not started
    api.post("reviewer", transition, {"action": "start"})
    assert api.post("reviewer", items, {"kind": "slice", "key": 1, "decision": "approve"}).status_code == 200
    changes = api.post("reviewer", items, {"kind": "slice", "key": 2, "decision": "request_changes",
                                           "comment": "nucleus leaks", "y": 5, "x": 6})
    assert changes.status_code == 200 and changes.json()["assignment"]["progress"]["changes_requested"] == 1
    pinned = Comment.objects.get()
    assert (pinned.z, pinned.y, pinned.x) == (2, 5, 6)  # z, not given, comes from the item
    refused = api.post("reviewer", transition, {"action": "approve"})
    assert refused.status_code == 409 and "need changes" in refused.json()["error"]["message"]
    assert api.post("annotator", items, {"kind": "slice", "key": 2, "decision": "approve"}).status_code == 403
    assert api.post("annotator", items, {"kind": "slice", "key": 1, "decision": "fixed"}).status_code == 409
    assert api.post("viewer", items, {"kind": "slice", "key": 2, "decision": "fixed"}).status_code == 403
    assert api.post("annotator", items, {"kind": "slice", "key": 2, "decision": "fixed"}).status_code == 200
    unknown = api.post("reviewer", items, {"kind": "slice", "key": 5, "decision": "approve"})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_item"
    bad = api.post("reviewer", items, {"kind": "slice", "key": 1, "decision": "maybe"})
    assert bad.status_code == 400
    assert api.post("reviewer", transition, {"action": "approve"}).status_code == 200
    states = dict(ReviewItem.objects.values_list("key", "state"))
    assert states == {1: "approved", 2: "approved", 3: "approved"}
    assert [e.action for e in AuditEvent.objects.filter(action__startswith="item_")] == [
        "item_approve", "item_request_changes", "item_fixed"]


def test_lists_filter_by_state_volume_and_person_and_the_summary_counts_overdue(api: Any, volume: Any) -> None:
    late = new_review(api, volume, due="2000-01-01")
    new_review(api, volume, reviewer="manager", fixer="manager", due=None)
    api.post("reviewer", f"/api/reviews/{late['id']}/transition/", {"action": "start"})
    base = f"/api/projects/{volume.project_id}/reviews/"
    assert [r["id"] for r in api.get("viewer", base, state="in_review").json()["results"]] == [late["id"]]
    assert [r["id"] for r in api.get("annotator", base, mine=1).json()["results"]] == [late["id"]]
    assert len(api.get("viewer", base, volume=volume.pk).json()["results"]) == 2
    assert api.get("viewer", base, state="lost").status_code == 400
    summary = api.get("viewer", base + "summary/").json()
    assert summary["by_state"]["in_review"] == 1 and summary["by_state"]["open"] == 1
    assert [r["id"] for r in summary["overdue"]] == [late["id"]] and summary["overdue"][0]["overdue"] is True
    people = {p["user"]: p for p in summary["by_person"]}
    assert people["reviewer"] == {"user": "reviewer", "reviewing": 1, "fixing": 0, "overdue": 1}
    assert people["manager"] == {"user": "manager", "reviewing": 1, "fixing": 1, "overdue": 0}
    assert dt.date.fromisoformat(late["due"]) < dt.date.today()


def test_notifications_are_the_users_own_and_can_be_marked_read(api: Any, volume: Any) -> None:
    new_review(api, volume)
    mine = api.get("reviewer", "/api/notifications/").json()
    assert mine["unread"] == 1 and mine["results"][0]["kind"] == "assigned"
    assert api.get("viewer", "/api/notifications/").json() == {"results": [], "unread": 0}
    other = Notification.objects.get(user__username="annotator").pk
    assert api.post("reviewer", "/api/notifications/read/", {"ids": [other]}).json()["marked"] == 0
    assert api.post("reviewer", "/api/notifications/read/", {"ids": []}).status_code == 400
    assert api.post("reviewer", "/api/notifications/read/", {"all": True}).json() == {"marked": 1, "unread": 0}
    assert api.get("reviewer", "/api/notifications/", unread=1).json()["results"] == []
    from django.test import Client

    assert Client().get("/api/notifications/").status_code in (401, 403)
