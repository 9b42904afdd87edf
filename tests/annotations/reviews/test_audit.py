"""The audit trail: review events merged with strokes, undo/redo/complete hooks, CSV export."""
from __future__ import annotations

import csv
import io
import json
import uuid
from typing import Any

import pytest

from annotations import strokes
from annotations.models import Role
from annotations.reviews.audit import audit_trail
from tests.factories import make_volume

pytestmark = pytest.mark.django_db


def _paint(volume: Any, user: Any, z: int = 1) -> str:
    uid = str(uuid.uuid4())
    strokes.stroke_apply(volume, user, Role.ANNOTATOR, {"uuid": uid, "layer": "manual", "axis": "z", "index": z,
                                                       "points": [[10, 10], [20, 20]], "radius": 3, "value": 2,
                                                       "mode": "paint"})
    return uid


def test_it_records_undo_redo_and_complete_marks_after_the_stroke_in_order(cast: Any, tmp_path: Any) -> None:
    volume = make_volume(cast.project, tmp_path)
    uid = _paint(volume, cast.annotator)
    strokes.stroke_undo(volume, cast.annotator, Role.ANNOTATOR, uid)
    strokes.stroke_undo(volume, cast.annotator, Role.ANNOTATOR, uid)  # a no-op: not recorded twice
    strokes.stroke_redo(volume, cast.annotator, Role.ANNOTATOR, uid)
    strokes.slice_mark_complete(volume, cast.annotator, Role.ANNOTATOR, axis="z", index=1, complete=True)
    rows = audit_trail(volume)
    assert [r["action"] for r in rows] == ["stroke", "stroke_undo", "stroke_redo", "slice_complete"]
    assert {r["actor"] for r in rows} == {"annotator"} and {r["layer"] for r in rows} == {"manual"}
    assert rows[0]["detail"]["uuid"] == uid == rows[1]["detail"]["uuid"]
    assert rows[3]["detail"] == {"axis": "z", "index": 1}


def test_a_stroke_names_the_class_it_painted(cast: Any, tmp_path: Any) -> None:
    volume = make_volume(cast.project, tmp_path)
    _paint(volume, cast.annotator)
    [row] = audit_trail(volume)
    expected = cast.project.label_classes.get(value=2).name
    assert row["detail"]["class"] == expected and row["detail"]["value"] == 2


def test_the_api_merges_review_actions_with_strokes_and_exports_csv(cast: Any, tmp_path: Any) -> None:
    from tests.annotations.reviews.conftest import Api, new_review

    volume = make_volume(cast.project, tmp_path)
    api = Api(cast)
    uid = _paint(volume, cast.annotator)
    review = new_review(api, volume, layer="manual", z0=0, z1=2)
    api.post("annotator", f"/api/volumes/{volume.pk}/strokes/{uid}/undo/")
    api.post("reviewer", f"/api/reviews/{review['id']}/transition/", {"action": "start"})
    rows = api.get("viewer", f"/api/volumes/{volume.pk}/audit/").json()["results"]
    assert [(r["actor"], r["action"]) for r in rows] == [
        ("annotator", "stroke"), ("manager", "review_created"), ("annotator", "stroke_undo"),
        ("reviewer", "review_start")]
    assert [r["at"] for r in rows] == sorted(r["at"] for r in rows)
    response = api.get("viewer", f"/api/volumes/{volume.pk}/audit/", format="csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    table = list(csv.reader(io.StringIO(response.content.decode())))
    assert table[0] == ["at", "actor", "action", "layer", "detail"]
    assert [r[2] for r in table[1:]] == [r["action"] for r in rows]
    assert json.loads(table[1][4])["uuid"] == uid
    assert len(api.get("viewer", f"/api/volumes/{volume.pk}/audit/", limit=2).json()["results"]) == 2
    later = api.get("viewer", f"/api/volumes/{volume.pk}/audit/", since=rows[2]["at"]).json()["results"]
    assert [r["action"] for r in later] == ["stroke_undo", "review_start"]
    refusals = [({"since": "yesterday"}, "bad_date"), ({"limit": 0}, "invalid"), ({"format": "xml"}, "invalid")]
    for params, code in refusals:
        bad = api.get("viewer", f"/api/volumes/{volume.pk}/audit/", **params)
        assert bad.status_code == 400 and bad.json()["error"]["code"] == code
    assert api.get("outsider", f"/api/volumes/{volume.pk}/audit/").status_code == 404
