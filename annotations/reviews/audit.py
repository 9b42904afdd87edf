"""The audit trail of a volume: review actions (AuditEvent rows) merged with its strokes.

Strokes are not copied into AuditEvent (that would add an insert to the painting hot
path); the trail reads both tables and merges them by time. Undo, redo, slice marks, label
imports and voxel size changes reach :func:`audit_received` through the
``annotations.signals.audit_event`` signal, connected in this app's ready().
"""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Any

from annotations.models import LabelClass, LabelLayer, Stroke, Volume
from annotations.reviews.models import AuditEvent

CSV_HEADER = ["at", "actor", "action", "layer", "detail"]
MAX_LIMIT = 100_000


def audit_record(volume: Volume, actor: Any, action: str, *, layer: str = "", detail: dict[str, Any] | None = None,
                 ) -> AuditEvent:
    """Write one audit event of `volume` (project taken from the volume)."""
    return AuditEvent.objects.create(
        project_id=volume.project_id, volume=volume, layer=layer or "", action=action, detail=detail or {},
        actor=actor if getattr(actor, "is_authenticated", False) else None)


def audit_received(sender: Any, *, volume: Volume, actor: Any, action: str, layer: str = "",
                   detail: dict[str, Any] | None = None, **_: Any) -> None:
    """Receiver of ``annotations.signals.audit_event``: the announced action as one AuditEvent row."""
    audit_record(volume, actor, action, layer=layer, detail=detail)


def _event_row(event: AuditEvent) -> dict[str, Any]:
    return {"at": event.at, "actor": event.actor.username if event.actor else None, "action": event.action,
            "layer": event.layer, "detail": event.detail}


def _stroke_row(stroke: Stroke, class_names: dict[int, str]) -> dict[str, Any]:
    detail: dict[str, Any] = {"uuid": str(stroke.uuid), "mode": stroke.mode, "axis": stroke.axis,
                              "index": stroke.index, "value": stroke.value, "active": stroke.active}
    # Say what was painted as people know it: the class name on a class layer, the cell id on
    # a cell layer (the trail showed "value 4"). The raw value stays for the CSV.
    if stroke.value and stroke.layer.kind == LabelLayer.Kind.LABELS:
        detail["class"] = class_names.get(stroke.value, f"unknown class {stroke.value}")
    elif stroke.value and stroke.layer.kind == LabelLayer.Kind.INSTANCES:
        detail["cell"] = stroke.value
    return {"at": stroke.created, "actor": stroke.user.username if stroke.user else None, "action": "stroke",
            "layer": stroke.layer.name, "detail": detail}


def audit_trail(volume: Volume, *, since: datetime | None = None, limit: int = 1000) -> list[dict[str, Any]]:
    """The volume's audit trail, oldest first: at most `limit` rows at or after `since`.

    Rows are {"at": datetime, "actor": username or None, "action": str, "layer": str,
    "detail": dict}; strokes appear as action "stroke".
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit {limit} is outside 1..{MAX_LIMIT}")
    events = AuditEvent.objects.filter(volume=volume).select_related("actor")
    strokes = Stroke.objects.filter(layer__volume=volume).select_related("user", "layer")
    if since is not None:
        events, strokes = events.filter(at__gte=since), strokes.filter(created__gte=since)
    class_names = dict(LabelClass.objects.filter(project_id=volume.project_id, kind=LabelClass.Kind.SEMANTIC)
                       .values_list("value", "name"))
    rows = ([_event_row(e) for e in events.order_by("at", "id")[:limit]]
            + [_stroke_row(s, class_names) for s in strokes.order_by("created", "id")[:limit]])
    rows.sort(key=lambda row: row["at"])  # stable: each source keeps its id order on equal times
    return rows[:limit]


def audit_json(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with `at` as ISO 8601 text, for the JSON answer."""
    return [{**row, "at": row["at"].isoformat()} for row in rows]


def audit_csv(rows: list[dict[str, Any]]) -> str:
    """Rows as CSV text (header at,actor,action,layer,detail; detail as compact JSON)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for row in rows:
        writer.writerow([row["at"].isoformat(), row["actor"] or "", row["action"], row["layer"],
                         json.dumps(row["detail"], sort_keys=True, separators=(",", ":"))])
    return out.getvalue()
