"""Comments pinned at a voxel: threads, resolve/reopen, filters, bad input."""
from __future__ import annotations

from typing import Any

import pytest

from annotations.reviews.models import AuditEvent, Notification
from tests.annotations.reviews.conftest import new_review

pytestmark = pytest.mark.django_db


def _comment(api: Any, volume: Any, who: str = "annotator", **body: Any) -> Any:
    return api.post(who, f"/api/volumes/{volume.pk}/comments/", {"z": 1, "y": 2, "x": 3, "text": "look", **body})


def test_a_thread_collects_replies_under_its_root_and_links_to_the_spot(api: Any, volume: Any) -> None:
    root = _comment(api, volume, layer="prediction", text="is this a nucleus?")
    assert root.status_code == 201
    root_id = root.json()["id"]
    assert root.json()["url"] == f"/volumes/{volume.pk}/#z=1&y=2&x=3" and root.json()["layer"] == "prediction"
    reply = _comment(api, volume, "reviewer", parent=root_id, text="yes")
    deeper = _comment(api, volume, "manager", parent=reply.json()["id"], text="agreed")
    assert reply.json()["parent"] == root_id and deeper.json()["parent"] == root_id  # replies to replies flatten
    listed = api.get("viewer", f"/api/volumes/{volume.pk}/comments/").json()["results"]
    assert [c["id"] for c in listed] == [root_id]
    assert [r["text"] for r in listed[0]["replies"]] == ["yes", "agreed"]
    assert Notification.objects.filter(user__username="annotator", kind="comment").count() == 2


def test_resolve_and_reopen_change_the_open_list_and_are_audited(api: Any, volume: Any) -> None:
    first = _comment(api, volume).json()["id"]
    second = _comment(api, volume, text="another").json()["id"]
    assert api.post("viewer", f"/api/comments/{first}/resolve/").status_code == 403
    assert api.post("outsider", f"/api/comments/{first}/resolve/").status_code == 404
    resolved = api.post("reviewer", f"/api/comments/{first}/resolve/").json()
    assert resolved["resolved"] is True and resolved["resolved_by"] == "reviewer"
    open_ids = [c["id"] for c in api.get("viewer", f"/api/volumes/{volume.pk}/comments/", open=1).json()["results"]]
    assert open_ids == [second]
    reopened = api.post("annotator", f"/api/comments/{first}/reopen/").json()
    assert reopened["resolved"] is False and reopened["resolved_by"] is None
    assert api.post("annotator", f"/api/comments/{first}/reopen/").status_code == 200  # twice: no change
    actions = list(AuditEvent.objects.filter(action__startswith="comment_").values_list("action", flat=True))
    assert actions == ["comment_added", "comment_added", "comment_resolved", "comment_reopened"]


def test_comments_filter_by_assignment(api: Any, volume: Any) -> None:
    review = new_review(api, volume)
    pinned = _comment(api, volume, assignment=review["id"]).json()["id"]
    _comment(api, volume)
    listed = api.get("viewer", f"/api/volumes/{volume.pk}/comments/", assignment=review["id"]).json()["results"]
    assert [c["id"] for c in listed] == [pinned]


@pytest.mark.parametrize("body, code", [
    ({"text": "   "}, "empty_comment"),
    ({"z": 6}, "off_volume"),
    ({"x": -1}, "off_volume"),
    ({"layer": "nope"}, "unknown_layer"),
    ({"parent": 999999}, "unknown_comment"),
    ({"assignment": 999999}, "unknown_assignment"),
])
def test_bad_comments_are_refused_with_a_clear_error(api: Any, volume: Any, body: dict[str, Any], code: str) -> None:
    response = _comment(api, volume, **body)
    assert response.status_code == 400 and response.json()["error"]["code"] == code


def test_viewers_read_comments_but_cannot_write_them(api: Any, volume: Any) -> None:
    assert _comment(api, volume, "viewer").status_code == 403
    assert api.get("viewer", f"/api/volumes/{volume.pk}/comments/").status_code == 200
    assert _comment(api, volume, "outsider").status_code == 404
