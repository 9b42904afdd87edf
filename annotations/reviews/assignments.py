"""Review assignments: creation, the state machine, per-item decisions, payloads and the dashboard.

States of an assignment and the actions between them (with the least role allowed)::

    open --start--> in_review                               reviewer
    in_review --request_changes--> changes_requested        reviewer (needs a comment)
    changes_requested --mark_fixed--> fixed                 annotator
    fixed --request_changes--> changes_requested            reviewer
    in_review | fixed --approve--> approved                 reviewer (refused while an item needs changes)
    approved --reopen--> in_review                          manager

Every change writes an AuditEvent and notifies the people concerned.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from annotations.imaging import omezarr
from annotations.models import LabelLayer, Membership, Project, Role, Volume
from annotations.reviews import comments
from annotations.reviews.audit import audit_record
from annotations.reviews.models import Comment, ReviewAssignment, ReviewItem
from annotations.reviews.notifications import notify
from annotations.storage import volume_zarr_path
from emportal.errors import ApplicationError

State = ReviewAssignment.State
ItemState = ReviewItem.State
MAX_ITEMS = 20_000
MAX_NOTE = 5000

# action -> (states it leaves from, state it goes to, least role)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str, Role]] = {
    "start": ((State.OPEN,), State.IN_REVIEW, Role.REVIEWER),
    "request_changes": ((State.IN_REVIEW, State.FIXED), State.CHANGES_REQUESTED, Role.REVIEWER),
    "mark_fixed": ((State.CHANGES_REQUESTED,), State.FIXED, Role.ANNOTATOR),
    "approve": ((State.IN_REVIEW, State.FIXED), State.APPROVED, Role.REVIEWER),
    "reopen": ((State.APPROVED,), State.IN_REVIEW, Role.MANAGER),
}
# item decision -> (item state it sets, least role)
DECISIONS: dict[str, tuple[str, Role]] = {
    "approve": (ItemState.APPROVED, Role.REVIEWER),
    "request_changes": (ItemState.CHANGES_REQUESTED, Role.REVIEWER),
    "fixed": (ItemState.FIXED, Role.ANNOTATOR),
}
# Assignment states in which items may be decided.
DECIDING = (State.IN_REVIEW, State.CHANGES_REQUESTED, State.FIXED)


def _invalid(message: str, code: str = "invalid", status: int = 400) -> ApplicationError:
    return ApplicationError(message, code=code, status_code=status)


def _forbidden(role: Role, need: Role, what: str) -> ApplicationError:
    return _invalid(f"{what} needs the {need.label} role or higher; you are {role.label}", "forbidden", 403)


# ---------------------------------------------------------------- validation of a new assignment
def _member(project: Project, username: Any, what: str, min_role: Role) -> Any:
    if not isinstance(username, str) or not username.strip():
        raise _invalid(f"give the {what}'s username", code="unknown_user")
    user = get_user_model().objects.filter(username=username.strip()).first()
    if user is None:
        raise _invalid(f"there is no user {username!r}", code="unknown_user")
    role = Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()
    if role is None:
        raise _invalid(f"{username!r} is not a member of project {project.name!r}", code="not_member")
    if Role(role) < min_role:
        raise _invalid(f"the {what} needs the {min_role.label} role or higher; {username!r} is {Role(role).label}",
                       code="role_too_low")
    return user


def _due(value: Any) -> dt.date | None:
    if value in (None, ""):
        return None
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise _invalid(f"due {value!r} is not a date YYYY-MM-DD", code="bad_date") from None


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise _invalid(f"{name} {value!r} is not an integer")
    try:
        out = int(value)
    except (TypeError, ValueError):
        raise _invalid(f"{name} {value!r} is not an integer") from None
    if str(out) != str(value).strip() and not isinstance(value, int):
        raise _invalid(f"{name} {value!r} is not an integer")
    return out


def _slice_range(volume: Volume, scope: str, z0: Any, z1: Any) -> tuple[int, int]:
    nz = volume.shape_z
    if scope != ReviewAssignment.Scope.SLICES:
        return 0, nz
    lo = 0 if z0 in (None, "") else _int(z0, "z0")
    hi = nz if z1 in (None, "") else _int(z1, "z1")
    if not 0 <= lo < hi <= nz:
        raise _invalid(f"slice range z0={lo}, z1={hi} is not inside the volume's 0..{nz} (z1 exclusive)",
                       code="off_volume")
    if hi - lo > MAX_ITEMS:
        raise _invalid(f"{hi - lo} slices is more than {MAX_ITEMS} in one assignment")
    return lo, hi


def _cell_ids(value: Any) -> list[int]:
    if not isinstance(value, list) or not value:
        raise _invalid('scope "cells" needs a non-empty list of cell ids in "cells"', code="no_cells")
    ids = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise _invalid(f"cell id {v!r} is not a positive integer", code="unknown_cell")
        ids.append(v)
    if len(ids) > MAX_ITEMS:
        raise _invalid(f"{len(ids)} cells is more than {MAX_ITEMS} in one assignment")
    return sorted(set(ids))


def cell_centroids(labels: Any, ids: list[int], *, z0: int = 0, z1: int | None = None) -> dict[int, list[int]]:
    """Rounded centroid [z, y, x] of each listed instance id, read one z slice at a time.

    Parameters
    ----------
    labels : array-like, shape (Z, Y, X), integer instance ids
    ids : instance ids to locate

    Returns
    -------
    dict
        id -> [z, y, x] (voxels) for the ids found; missing ids are absent.
    """
    z1 = labels.shape[0] if z1 is None else z1
    wanted = np.asarray(sorted(ids), dtype=np.int64)
    sums = np.zeros((len(wanted), 4), dtype=np.float64)  # count, z, y, x
    for z in range(z0, z1):
        plane = np.asarray(labels[z]).astype(np.int64, copy=False)
        hit = np.isin(plane, wanted)
        if not hit.any():
            continue
        ys, xs = np.nonzero(hit)
        idx = np.searchsorted(wanted, plane[ys, xs])
        np.add.at(sums, idx, np.stack([np.ones_like(ys), np.full_like(ys, z), ys, xs], axis=1).astype(np.float64))
    return {int(cid): [int(round(s[1] / s[0])), int(round(s[2] / s[0])), int(round(s[3] / s[0]))]
            for cid, s in zip(wanted.tolist(), sums) if s[0] > 0}


def _layer_of(volume: Volume, name: Any) -> LabelLayer:
    layer = volume.layers.filter(name=str(name or "")).first()
    if layer is None:
        names = ", ".join(volume.layers.values_list("name", flat=True))
        raise _invalid(f"volume {volume.name!r} has no layer {name!r} (it has: {names})", code="unknown_layer")
    return layer


def assignment_create(project: Project, user: Any, *, volume: Any, layer: Any, scope: Any = "slices",
                      z0: Any = None, z1: Any = None, cells: Any = None, reviewer: Any, fixer: Any,
                      due: Any = None, note: Any = "") -> ReviewAssignment:
    """Create an assignment and its items (one per slice, or per listed cell); notify reviewer and fixer."""
    vol = Volume.objects.filter(pk=_int(volume, "volume"), project=project).first()
    if vol is None:
        raise _invalid(f"project {project.name!r} has no volume {volume!r}", code="unknown_volume")
    if vol.state != Volume.State.READY:
        raise _invalid(f"volume {vol.name!r} is {vol.state}, not ready", code="volume_not_ready", status=409)
    label_layer = _layer_of(vol, layer)
    if scope not in ReviewAssignment.Scope.values:
        raise _invalid(f"scope {scope!r} is not one of {ReviewAssignment.Scope.values}", code="invalid")
    lo, hi = _slice_range(vol, scope, z0, z1)
    ids: list[int] = []
    centers: dict[int, list[int]] = {}
    if scope == ReviewAssignment.Scope.CELLS:
        if label_layer.kind != LabelLayer.Kind.INSTANCES:
            raise _invalid(f'scope "cells" needs an instance layer; {label_layer.name!r} holds classes')
        ids = _cell_ids(cells)
        centers = _centroids_cached(str(volume_zarr_path(vol)), label_layer.name, label_layer.version, tuple(ids))
        missing = [c for c in ids if c not in centers]
        if missing:
            raise _invalid(f"layer {label_layer.name!r} holds no cell {missing[:10]}", code="unknown_cell")
    reviewer_user = _member(project, reviewer, "reviewer", Role.REVIEWER)
    fixer_user = _member(project, fixer, "fixer", Role.ANNOTATOR)
    due_date = _due(due)
    note = "" if note is None else str(note)[:MAX_NOTE]
    with transaction.atomic():
        assignment = ReviewAssignment.objects.create(
            project=project, volume=vol, layer=label_layer, scope=scope, z0=lo, z1=hi, cells=ids,
            reviewer=reviewer_user, fixer=fixer_user, due=due_date, note=note, created_by=user)
        if scope == ReviewAssignment.Scope.CELLS:
            items = [ReviewItem(assignment=assignment, kind=ReviewItem.Kind.CELL, key=c) for c in ids]
        else:
            items = [ReviewItem(assignment=assignment, kind=ReviewItem.Kind.SLICE, key=z) for z in range(lo, hi)]
        ReviewItem.objects.bulk_create(items)
        audit_record(vol, user, "review_created", layer=label_layer.name,
                     detail={"assignment": assignment.pk, "scope": scope, "z0": lo, "z1": hi, "cells": ids[:100],
                             "reviewer": reviewer_user.username, "fixer": fixer_user.username,
                             "due": due_date.isoformat() if due_date else None})
        text = f"Review {assignment.pk}: {label_layer.name} of {vol.name} ({_what(assignment)})"
        notify([reviewer_user, fixer_user], "assigned", f"Assigned to you: {text}", link=assignment_url(assignment))
    return assignment


def _what(a: ReviewAssignment) -> str:
    if a.scope == ReviewAssignment.Scope.CELLS:
        return f"{len(a.cells)} cells"
    return f"slices {a.z0}..{a.z1 - 1}"


def assignment_url(a: ReviewAssignment) -> str:
    return f"/volumes/{a.volume_id}/?review={a.pk}"


# ---------------------------------------------------------------- state machine
def _pin(a: ReviewAssignment, z: Any, y: Any, x: Any, *, key: int | None = None) -> tuple[int, int, int]:
    """The voxel a comment is pinned at: the given coordinates, the missing ones taken from the
    item's center (or the first undecided item's)."""
    if z is not None and y is not None and x is not None:
        return _int(z, "z"), _int(y, "y"), _int(x, "x")
    item = (a.items.filter(key=key).first() if key is not None
            else a.items.exclude(state=ItemState.APPROVED).first() or a.items.first())
    center = (item_center(a, item) if item else None) or [a.z0, a.volume.shape_y // 2, a.volume.shape_x // 2]
    pz, py, px = (c if v is None else _int(v, n) for v, c, n in zip((z, y, x), center, "zyx"))
    return pz, py, px


def _comment(a: ReviewAssignment, user: Any, text: Any, z: Any, y: Any, x: Any, *, key: int | None = None,
             required: bool) -> Comment | None:
    if text is None or not str(text).strip():
        if required:
            raise _invalid("requesting changes needs a comment saying what to change", code="empty_comment")
        return None
    pz, py, px = _pin(a, z, y, x, key=key)
    return comments.comment_add(a.volume, user, Role.REVIEWER, z=pz, y=py, x=px, text=text, layer=a.layer.name,
                                assignment=a.pk, notify_people=False)


def assignment_transition(a: ReviewAssignment, user: Any, role: Role, action: Any, *, comment: Any = None,
                          z: Any = None, y: Any = None, x: Any = None) -> ReviewAssignment:
    """Apply one action of the state machine (see the module docstring)."""
    if action not in TRANSITIONS:
        raise _invalid(f"action {action!r} is not one of {sorted(TRANSITIONS)}", code="invalid")
    sources, target, need = TRANSITIONS[action]
    if role < need:
        raise _forbidden(role, need, f"{action!r}")
    with transaction.atomic():
        a = ReviewAssignment.objects.select_for_update().select_related("volume", "layer").get(pk=a.pk)
        if a.state not in sources:
            raise _invalid(f"cannot {action} a review that is {a.state} (allowed from {', '.join(sources)})",
                           code="invalid_transition", status=409)
        if action == "approve":
            blocking = a.items.filter(state=ItemState.CHANGES_REQUESTED).count()
            if blocking:
                raise _invalid(f"{blocking} item(s) still need changes; mark them fixed or approve them first",
                               code="invalid_transition", status=409)
        note = _comment(a, user, comment, z, y, x, required=action == "request_changes")
        now = timezone.now()
        if action == "approve":
            a.items.filter(state__in=(ItemState.PENDING, ItemState.FIXED)).update(
                state=ItemState.APPROVED, decided_by=user, decided_at=now)
        elif action == "mark_fixed":
            a.items.filter(state=ItemState.CHANGES_REQUESTED).update(state=ItemState.FIXED, decided_by=user,
                                                                     decided_at=now)
        before, a.state = a.state, target
        a.save(update_fields=["state", "updated"])
        audit_record(a.volume, user, f"review_{action}", layer=a.layer.name,
                     detail={"assignment": a.pk, "from": before, "to": target,
                             **({"comment": note.pk, "text": note.text[:200], "z": note.z, "y": note.y, "x": note.x}
                                if note else {})})
        _notify_transition(a, user, action, note)
    return a


def _notify_transition(a: ReviewAssignment, user: Any, action: str, note: Comment | None) -> None:
    name = f"review {a.pk} ({a.layer.name} of {a.volume.name}, {_what(a)})"
    who = getattr(user, "username", "someone")
    link = note and comments.comment_url(note) or assignment_url(a)
    if action == "request_changes":
        notify([a.fixer], "changes_requested", f"{who} requested changes on {name}: {note.text[:200] if note else ''}",
               link=link, actor=user)
    elif action == "mark_fixed":
        notify([a.reviewer], "fixed", f"{who} marked {name} fixed", link=assignment_url(a), actor=user)
    elif action == "approve":
        notify([a.fixer, a.created_by], "approved", f"{who} approved {name}", link=assignment_url(a), actor=user)


def item_decide(a: ReviewAssignment, user: Any, role: Role, *, kind: Any, key: Any, decision: Any,
                comment: Any = None, z: Any = None, y: Any = None, x: Any = None) -> ReviewItem:
    """Decide one slice or cell of an assignment: approve / request_changes (reviewer+) or fixed (annotator+)."""
    if decision not in DECISIONS:
        raise _invalid(f"decision {decision!r} is not one of {sorted(DECISIONS)}")
    target, need = DECISIONS[decision]
    if role < need:
        raise _forbidden(role, need, f"decision {decision!r}")
    if kind not in ReviewItem.Kind.values:
        raise _invalid(f"kind {kind!r} is not one of {ReviewItem.Kind.values}")
    key = _int(key, "key")
    with transaction.atomic():
        a = ReviewAssignment.objects.select_for_update().select_related("volume", "layer").get(pk=a.pk)
        item = a.items.filter(kind=kind, key=key).first()
        if item is None:
            raise _invalid(f"review {a.pk} has no {kind} {key}", code="unknown_item", status=404)
        if a.state not in DECIDING:
            raise _invalid(f"items can be decided while the review is in review, changes requested or fixed; "
                           f"it is {a.state}", code="invalid_transition", status=409)
        if decision == "fixed" and item.state != ItemState.CHANGES_REQUESTED:
            raise _invalid(f"{kind} {key} is {item.state}; only an item with changes requested can be fixed",
                           code="invalid_transition", status=409)
        note = _comment(a, user, comment, z, y, x, key=key, required=False)
        before = item.state
        item.state, item.decided_by, item.decided_at = target, user, timezone.now()
        item.save(update_fields=["state", "decided_by", "decided_at"])
        ReviewAssignment.objects.filter(pk=a.pk).update(updated=timezone.now())
        audit_record(a.volume, user, f"item_{decision}", layer=a.layer.name,
                     detail={"assignment": a.pk, "kind": kind, "key": key, "from": before, "to": target,
                             **({"comment": note.pk, "text": note.text[:200]} if note else {})})
        if decision == "request_changes":
            notify([a.fixer], "changes_requested",
                   f"{getattr(user, 'username', '')} requested changes on {kind} {key} of review {a.pk}"
                   + (f": {note.text[:200]}" if note else ""),
                   link=comments.comment_url(note) if note else assignment_url(a), actor=user)
    return item


def assignment_delete(a: ReviewAssignment, user: Any) -> None:
    audit_record(a.volume, user, "review_deleted", layer=a.layer.name, detail={"assignment": a.pk, "state": a.state})
    a.delete()


# ---------------------------------------------------------------- payloads
@lru_cache(maxsize=64)
def _centroids_cached(zarr_path: str, layer: str, version: int, ids: tuple[int, ...]) -> dict[int, list[int]]:
    # keyed by the layer version: a fix that moves a cell moves its center too
    return cell_centroids(omezarr.open_label_level(Path(zarr_path), layer, 0), list(ids))


def _cell_centers(a: ReviewAssignment) -> dict[int, list[int]]:
    return _centroids_cached(str(volume_zarr_path(a.volume)), a.layer.name, a.layer.version, tuple(a.cells))


def item_center(a: ReviewAssignment, item: ReviewItem) -> list[int] | None:
    """[z, y, x] to jump to: the middle of a slice, or the centroid of a cell (None if it is gone)."""
    if item.kind == ReviewItem.Kind.SLICE:
        return [int(item.key), a.volume.shape_y // 2, a.volume.shape_x // 2]
    return _cell_centers(a).get(int(item.key))


def _today() -> dt.date:
    return timezone.localdate()


def is_overdue(a: ReviewAssignment) -> bool:
    return a.due is not None and a.state != State.APPROVED and a.due < _today()


def _progress(counts: Counter) -> dict[str, int]:
    out = {s: int(counts.get(s, 0)) for s in ItemState.values}
    out["total"] = sum(out.values())
    return out


def assignment_payload(a: ReviewAssignment, counts: Counter | None = None) -> dict[str, Any]:
    if counts is None:
        counts = Counter(dict(a.items.values_list("state").annotate(n=_count()).values_list("state", "n")))
    return {
        "id": a.pk, "project": a.project_id, "volume": a.volume_id, "volume_name": a.volume.name,
        "layer": a.layer.name, "layer_kind": a.layer.kind, "scope": a.scope, "z0": a.z0, "z1": a.z1,
        "cells": a.cells, "reviewer": a.reviewer.username if a.reviewer else None,
        "fixer": a.fixer.username if a.fixer else None, "due": a.due.isoformat() if a.due else None,
        "note": a.note, "state": a.state, "created_by": a.created_by.username if a.created_by else None,
        "created": a.created.isoformat(), "updated": a.updated.isoformat(), "overdue": is_overdue(a),
        "progress": _progress(counts), "url": assignment_url(a),
    }


def _count() -> Any:
    from django.db.models import Count

    return Count("id")


def _counts_by_assignment(ids: list[int]) -> dict[int, Counter]:
    out: dict[int, Counter] = {i: Counter() for i in ids}
    rows = (ReviewItem.objects.filter(assignment_id__in=ids).values("assignment_id", "state")
            .annotate(n=_count()).values_list("assignment_id", "state", "n"))
    for aid, state, n in rows:
        out[aid][state] = n
    return out


def _with_relations(qs: Any) -> Any:
    return qs.select_related("volume", "layer", "reviewer", "fixer", "created_by")


def assignment_detail(a: ReviewAssignment) -> dict[str, Any]:
    """The assignment with its items (and where to look at each) and its history."""
    from annotations.reviews.models import AuditEvent

    items = list(a.items.select_related("decided_by").order_by("kind", "key"))
    counts = Counter(i.state for i in items)
    payload = assignment_payload(a, counts)
    payload["items"] = [{"kind": i.kind, "key": i.key, "state": i.state,
                         "decided_by": i.decided_by.username if i.decided_by else None,
                         "decided_at": i.decided_at.isoformat() if i.decided_at else None,
                         "center": item_center(a, i)} for i in items]
    history = (AuditEvent.objects.filter(volume_id=a.volume_id, detail__assignment=a.pk)
               .select_related("actor").order_by("at", "id"))
    payload["history"] = [{"at": e.at.isoformat(), "actor": e.actor.username if e.actor else None,
                           "action": e.action, "layer": e.layer, "detail": e.detail} for e in history]
    return payload


def assignments_list(project: Project, user: Any, *, state: Any = None, volume: Any = None,
                     mine: bool = False) -> list[dict[str, Any]]:
    qs = _with_relations(ReviewAssignment.objects.filter(project=project))
    if state not in (None, ""):
        if state not in State.values:
            raise _invalid(f"state {state!r} is not one of {State.values}")
        qs = qs.filter(state=state)
    if volume not in (None, ""):
        qs = qs.filter(volume_id=_int(volume, "volume"))
    if mine:
        qs = qs.filter(Q(reviewer=user) | Q(fixer=user))
    rows = list(qs.order_by("-id")[:1000])
    counts = _counts_by_assignment([a.pk for a in rows])
    return [assignment_payload(a, counts[a.pk]) for a in rows]


def assignments_summary(project: Project) -> dict[str, Any]:
    """Counts by state, open work per person, and the overdue assignments."""
    rows = list(_with_relations(ReviewAssignment.objects.filter(project=project)))
    by_state = {s: 0 for s in State.values}
    people: dict[str, dict[str, Any]] = {}

    def person(user: Any) -> dict[str, Any]:
        return people.setdefault(user.username, {"user": user.username, "reviewing": 0, "fixing": 0, "overdue": 0})

    overdue = []
    for a in rows:
        by_state[a.state] += 1
        late = is_overdue(a)
        if late:
            overdue.append(a)
        if a.state == State.APPROVED:
            continue
        if a.reviewer:
            person(a.reviewer)["reviewing"] += 1
            person(a.reviewer)["overdue"] += int(late)
        if a.fixer:
            person(a.fixer)["fixing"] += 1
            if a.fixer != a.reviewer:
                person(a.fixer)["overdue"] += int(late)
    counts = _counts_by_assignment([a.pk for a in overdue])
    return {"by_state": by_state, "by_person": sorted(people.values(), key=lambda p: p["user"]),
            "overdue": [assignment_payload(a, counts[a.pk]) for a in sorted(overdue, key=lambda a: a.due)]}


def assignment_for_user(user: Any, assignment_id: int, *, min_role: Role = Role.VIEWER
                        ) -> tuple[ReviewAssignment, Role]:
    """The assignment and the user's role in its project (outsiders 404, lower roles 403)."""
    from annotations.access import project_for_user

    a = _with_relations(ReviewAssignment.objects.filter(pk=assignment_id)).first()
    if a is None:
        from django.http import Http404

        raise Http404("not found")
    _, role = project_for_user(user, a.project_id, min_role=min_role)
    return a, role
