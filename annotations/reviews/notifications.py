"""In-app notifications: written by the review services, read and marked read by their user."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from annotations.reviews.models import Notification
from emportal.errors import ApplicationError


def notify(users: Iterable[Any], kind: str, text: str, *, link: str = "", actor: Any = None) -> list[Notification]:
    """One notification per distinct user (None and the actor themself are skipped)."""
    if kind not in Notification.Kind.values:
        raise ValueError(f"notification kind {kind!r} is not one of {Notification.Kind.values}")
    seen: set[int] = set()
    rows = []
    for user in users:
        if user is None or user.pk in seen or (actor is not None and user.pk == getattr(actor, "pk", None)):
            continue
        seen.add(user.pk)
        rows.append(Notification(user=user, kind=kind, text=text[:500], link=link[:500]))
    return Notification.objects.bulk_create(rows)


def notification_payload(n: Notification) -> dict[str, Any]:
    return {"id": n.pk, "kind": n.kind, "text": n.text, "link": n.link, "created": n.created.isoformat(),
            "read": n.read}


def notifications_for(user: Any, *, unread_only: bool = False, limit: int = 200) -> dict[str, Any]:
    """{"results": [...newest first], "unread": n} of the user's own notifications."""
    rows = Notification.objects.filter(user=user)
    unread = rows.filter(read=False).count()
    if unread_only:
        rows = rows.filter(read=False)
    return {"results": [notification_payload(n) for n in rows.order_by("-id")[:limit]], "unread": unread}


def notifications_mark_read(user: Any, *, ids: Any = None, all_: bool = False) -> int:
    """Mark the user's notifications read (the given ids, or all); returns how many changed."""
    rows = Notification.objects.filter(user=user, read=False)
    if not all_:
        if not isinstance(ids, list) or not ids or not all(isinstance(i, int) and not isinstance(i, bool)
                                                            for i in ids):
            raise ApplicationError('give "ids": [integers] or "all": true', code="invalid")
        rows = rows.filter(pk__in=ids)
    return rows.update(read=True)
