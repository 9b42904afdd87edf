"""Comments pinned at a voxel: threads (replies to a root), resolve and reopen."""
from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from annotations.models import Role, Volume
from annotations.reviews.audit import audit_record
from annotations.reviews.models import Comment, ReviewAssignment
from annotations.reviews.notifications import notify
from emportal.errors import ApplicationError

MAX_TEXT = 5000


def _invalid(message: str, code: str = "invalid", status: int = 400) -> ApplicationError:
    return ApplicationError(message, code=code, status_code=status)


def _voxel(volume: Volume, z: Any, y: Any, x: Any) -> tuple[int, int, int]:
    out = []
    for name, value, size in (("z", z, volume.shape_z), ("y", y, volume.shape_y), ("x", x, volume.shape_x)):
        if isinstance(value, bool):
            raise _invalid(f"{name} {value!r} is not an integer")
        try:
            v = int(value)
        except (TypeError, ValueError):
            raise _invalid(f"{name} {value!r} is not an integer") from None
        if not 0 <= v < size:
            raise _invalid(f"{name}={v} is outside the volume (0..{size - 1})", code="off_volume")
        out.append(v)
    return out[0], out[1], out[2]


def comment_url(c: Comment) -> str:
    """The viewer at the comment's voxel; with its review open (`?review=`) when it belongs
    to one, so the person asked for changes finds *Mark fixed* there."""
    review = f"?review={c.assignment_id}" if c.assignment_id else ""
    return f"/volumes/{c.volume_id}/{review}#z={c.z}&y={c.y}&x={c.x}"


def comment_add(volume: Volume, user: Any, role: Role, *, z: Any, y: Any, x: Any, text: Any, layer: Any = None,
                assignment: Any = None, parent: Any = None, notify_people: bool = True) -> Comment:
    """Pin a comment at voxel (z, y, x) of `volume` (annotator+); a reply goes to the root of its thread."""
    if role < Role.ANNOTATOR:
        raise _invalid("viewers cannot comment", code="forbidden", status=403)
    text = "" if text is None else str(text).strip()
    if not text:
        raise _invalid("the comment is empty", code="empty_comment")
    if len(text) > MAX_TEXT:
        raise _invalid(f"the comment is {len(text)} characters, more than {MAX_TEXT}")
    pz, py, px = _voxel(volume, z, y, x)
    layer_row = None
    if layer not in (None, ""):
        layer_row = volume.layers.filter(name=str(layer)).first()
        if layer_row is None:
            raise _invalid(f"volume {volume.name!r} has no layer {layer!r}", code="unknown_layer")
    review = None
    if assignment not in (None, ""):
        review = ReviewAssignment.objects.filter(pk=_id(assignment, "assignment"), volume=volume).first()
        if review is None:
            raise _invalid(f"volume {volume.name!r} has no review {assignment!r}", code="unknown_assignment")
    root = None
    if parent not in (None, ""):
        root = Comment.objects.filter(pk=_id(parent, "parent"), volume=volume).first()
        if root is None:
            raise _invalid(f"volume {volume.name!r} has no comment {parent!r}", code="unknown_comment")
        root = root.parent or root
        review = review or root.assignment
        layer_row = layer_row or root.layer
    with transaction.atomic():
        comment = Comment.objects.create(volume=volume, layer=layer_row, assignment=review, parent=root,
                                         z=pz, y=py, x=px, text=text, author=user)
        audit_record(volume, user, "comment_added", layer=layer_row.name if layer_row else "",
                     detail={"comment": comment.pk, "parent": root.pk if root else None,
                             "assignment": review.pk if review else None, "z": pz, "y": py, "x": px,
                             "text": text[:200]})
        if notify_people:
            people = [root.author] if root else []
            if review is not None:
                people += [review.reviewer, review.fixer]
            notify(people, "comment", f"{getattr(user, 'username', '')} commented on {volume.name}: {text[:200]}",
                   link=comment_url(comment), actor=user)
    return comment


def _id(value: Any, name: str) -> int:
    try:
        if isinstance(value, bool):
            raise ValueError
        return int(value)
    except (TypeError, ValueError):
        raise _invalid(f"{name} {value!r} is not an id") from None


def comment_set_resolved(comment: Comment, user: Any, role: Role, *, resolved: bool) -> Comment:
    """Resolve or reopen a comment (annotator+); doing it twice changes nothing the second time."""
    if role < Role.ANNOTATOR:
        raise _invalid("viewers cannot resolve comments", code="forbidden", status=403)
    if comment.resolved == resolved:
        return comment
    comment.resolved = resolved
    comment.resolved_by = user if resolved else None
    comment.resolved_at = timezone.now() if resolved else None
    with transaction.atomic():
        comment.save(update_fields=["resolved", "resolved_by", "resolved_at"])
        audit_record(comment.volume, user, "comment_resolved" if resolved else "comment_reopened",
                     layer=comment.layer.name if comment.layer else "",
                     detail={"comment": comment.pk, "assignment": comment.assignment_id})
    return comment


def comment_payload(c: Comment) -> dict[str, Any]:
    return {"id": c.pk, "volume": c.volume_id, "layer": c.layer.name if c.layer else None,
            "assignment": c.assignment_id, "parent": c.parent_id, "z": c.z, "y": c.y, "x": c.x, "text": c.text,
            "author": c.author.username if c.author else None, "created": c.created.isoformat(),
            "resolved": c.resolved, "resolved_by": c.resolved_by.username if c.resolved_by else None,
            "resolved_at": c.resolved_at.isoformat() if c.resolved_at else None, "url": comment_url(c)}


def comments_list(volume: Volume, *, open_only: bool = False, assignment: Any = None) -> list[dict[str, Any]]:
    """Root comments of the volume, oldest first, each with its "replies"."""
    rows = Comment.objects.filter(volume=volume).select_related("layer", "author", "resolved_by")
    roots = rows.filter(parent__isnull=True)
    if open_only:
        roots = roots.filter(resolved=False)
    if assignment not in (None, ""):
        roots = roots.filter(assignment_id=_id(assignment, "assignment"))
    roots_list = list(roots.order_by("id")[:2000])
    replies: dict[int, list[dict[str, Any]]] = {r.pk: [] for r in roots_list}
    for reply in rows.filter(parent_id__in=list(replies)).order_by("id"):
        replies[reply.parent_id or 0].append(comment_payload(reply))  # parent_id is one of the roots
    return [{**comment_payload(r), "replies": replies[r.pk]} for r in roots_list]
