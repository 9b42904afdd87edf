"""Per-project role checks, used by every view, consumer and tile request.

A user outside a project gets 404 for anything in it (no leak that it exists); a
member below the required role gets 403.
"""
from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import Http404, HttpRequest
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from annotations.models import Membership, Project, Role, Volume
from emportal.tokens.models import ApiToken
from emportal.tokens.selectors import key_from_authorization, token_digest, token_for_key

# Ids the database can hold (signed 64 bits); the driver raises OverflowError for others.
_ID_LIMIT = 2**63


def _storable(object_id: int) -> bool:
    return -_ID_LIMIT <= object_id < _ID_LIMIT


def role_in_project(user: Any, project_id: int) -> Role | None:
    if not getattr(user, "is_authenticated", False) or not _storable(project_id):
        return None
    role = Membership.objects.filter(project_id=project_id, user=user).values_list("role", flat=True).first()
    return Role(role) if role is not None else None


def _require(role: Role | None, min_role: Role) -> Role:
    if role is None:
        raise Http404("not found")
    if role < min_role:
        raise PermissionDenied(f"this needs the {min_role.label} role or higher; you are {role.label}")
    return role


def project_for_user(user: Any, project_id: int, *, min_role: Role = Role.VIEWER) -> tuple[Project, Role]:
    role = _require(role_in_project(user, project_id), min_role)
    try:
        return Project.objects.get(pk=project_id), role
    except Project.DoesNotExist:
        raise Http404("not found") from None


def volume_for_user(user: Any, volume_id: int, *, min_role: Role = Role.VIEWER) -> tuple[Volume, Role]:
    """The volume and the user's role on its project."""
    if not getattr(user, "is_authenticated", False) or not _storable(volume_id):
        raise Http404("not found")
    volume = Volume.objects.select_related("project").filter(pk=volume_id).first()
    if volume is None:
        raise Http404("not found")
    return volume, _require(role_in_project(user, volume.project_id), min_role)


def ready_volume_row_for_user(user: Any, volume_id: int) -> dict[str, Any]:
    """The few volume fields a tile needs, for a member of its project, in one query.

    Tiles are the hottest path of the app (hundreds per screen), so this skips model
    instances; any role may read tiles, and anyone else gets 404.
    """
    if not getattr(user, "is_authenticated", False) or not _storable(volume_id):
        raise Http404("not found")
    with connection.cursor() as cursor:
        cursor.execute(_TILE_ACCESS_SQL, [volume_id, Volume.State.READY, user.pk])
        row = cursor.fetchone()
    if row is None:
        raise Http404("not found")
    levels = json.loads(row[2]) if isinstance(row[2], str) else row[2]
    return {"pk": volume_id, "project_id": row[0], "zarr_path": row[1], "levels": levels}


def ready_volume_row_for_request(request: HttpRequest, volume_id: int) -> dict[str, Any]:
    """:func:`ready_volume_row_for_user` for the request's logged-in user, without the ORM.

    Django's own path loads the session and then the user through the ORM, which costs
    more than rendering a small tile. Here the session row and the user's membership are
    read with two raw queries and checked as Django checks them (session not expired,
    signed data intact, known backend, user active, session hash matching the password).
    Anything short of a clean match falls back to ``request.user``, so the answer, a
    flushed session included, is always Django's.

    A request with ``Authorization: Token <key>`` is the token's user alone, never the
    session's (as in DRF): one raw query from the key's hash to the membership; an
    unknown or revoked token is refused (403), a member-less one gets 404.
    """
    key = key_from_authorization(request.headers.get("Authorization"))
    if key is not None:
        return _tile_row_from_token(key, volume_id)
    row = _tile_row_from_session(request, volume_id)
    return row if row is not None else ready_volume_row_for_user(request.user, volume_id)


def _tile_row_from_token(key: str, volume_id: int) -> dict[str, Any]:
    row = None
    if _storable(volume_id):
        with connection.cursor() as cursor:
            cursor.execute(_TILE_ACCESS_WITH_TOKEN_SQL, [volume_id, Volume.State.READY, token_digest(key), True])
            row = cursor.fetchone()
    if row is None:
        if token_for_key(key) is None:  # only on this path: tell a bad token from a volume it may not read
            raise PermissionDenied("invalid or revoked token")
        raise Http404("not found")
    levels = json.loads(row[2]) if isinstance(row[2], str) else row[2]
    return {"pk": volume_id, "project_id": row[0], "zarr_path": row[1], "levels": levels}


def _tile_row_from_session(request: HttpRequest, volume_id: int) -> dict[str, Any] | None:
    key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    if not key or not _storable(volume_id) or settings.SESSION_ENGINE != "django.contrib.sessions.backends.db":
        return None
    with connection.cursor() as cursor:
        cursor.execute(_SESSION_SQL, [key, timezone.now()])
        found = cursor.fetchone()
        if found is None:
            return None
        data = SessionStore().decode(found[0])
        backend = data.get(BACKEND_SESSION_KEY)
        if backend not in _MODEL_BACKENDS or backend not in settings.AUTHENTICATION_BACKENDS or not data.get(
                HASH_SESSION_KEY):
            return None
        try:
            user_id = get_user_model()._meta.pk.to_python(data.get(SESSION_KEY))
        except Exception:
            return None
        cursor.execute(_TILE_ACCESS_WITH_USER_SQL, [volume_id, Volume.State.READY, user_id])
        row = cursor.fetchone()
    if row is None or not row[4]:
        return None
    user = get_user_model()(pk=user_id, password=row[3])
    if not constant_time_compare(data[HASH_SESSION_KEY], user.get_session_auth_hash()):
        return None
    levels = json.loads(row[2]) if isinstance(row[2], str) else row[2]
    return {"pk": volume_id, "project_id": row[0], "zarr_path": row[1], "levels": levels}


_MODEL_BACKENDS = {"django.contrib.auth.backends.ModelBackend"}
_SESSION_SQL = f"SELECT session_data FROM {Session._meta.db_table} WHERE session_key = %s AND expire_date > %s"

# One indexed join instead of two ORM queries: the ORM's query building alone costs
# more than the lookup on this path.
_TILE_ACCESS_SQL = (
    f"SELECT v.project_id, v.zarr_path, v.levels FROM {Volume._meta.db_table} v "
    f"JOIN {Membership._meta.db_table} m ON m.project_id = v.project_id "
    "WHERE v.id = %s AND v.state = %s AND m.user_id = %s"
)
_TILE_ACCESS_WITH_USER_SQL = (
    f"SELECT v.project_id, v.zarr_path, v.levels, u.password, u.is_active FROM {Volume._meta.db_table} v "
    f"JOIN {Membership._meta.db_table} m ON m.project_id = v.project_id "
    f"JOIN {get_user_model()._meta.db_table} u ON u.id = m.user_id "
    "WHERE v.id = %s AND v.state = %s AND m.user_id = %s"
)
_TILE_ACCESS_WITH_TOKEN_SQL = (
    f"SELECT v.project_id, v.zarr_path, v.levels FROM {Volume._meta.db_table} v "
    f"JOIN {Membership._meta.db_table} m ON m.project_id = v.project_id "
    f"JOIN {ApiToken._meta.db_table} t ON t.user_id = m.user_id "
    f"JOIN {get_user_model()._meta.db_table} u ON u.id = m.user_id "
    "WHERE v.id = %s AND v.state = %s AND t.digest = %s AND u.is_active = %s"
)
