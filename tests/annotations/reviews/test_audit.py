"""The audit trail: review events merged with strokes, undo/redo/complete hooks, CSV export."""
from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import pytest
from django.test import Client

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
