"""Per-project role checks, used by every view, consumer and tile request.

A user outside a project gets 404 for anything in it (no leak that it exists); a
member below the required role gets 403.
"""
from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import Http404

from annotations.models import Membership, Project, Role, Volume


def role_in_project(user: Any, project_id: int) -> Role | None:
    if not getattr(user, "is_authenticated", False):
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
    if not getattr(user, "is_authenticated", False):
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
    if not getattr(user, "is_authenticated", False):
        raise Http404("not found")
    with connection.cursor() as cursor:
        cursor.execute(_TILE_ACCESS_SQL, [volume_id, Volume.State.READY, user.pk])
        row = cursor.fetchone()
    if row is None:
        raise Http404("not found")
    levels = json.loads(row[2]) if isinstance(row[2], str) else row[2]
    return {"pk": volume_id, "project_id": row[0], "zarr_path": row[1], "levels": levels}


# One indexed join instead of two ORM queries: the ORM's query building alone costs
# more than the lookup on this path.
_TILE_ACCESS_SQL = (
    f"SELECT v.project_id, v.zarr_path, v.levels FROM {Volume._meta.db_table} v "
    f"JOIN {Membership._meta.db_table} m ON m.project_id = v.project_id "
    "WHERE v.id = %s AND v.state = %s AND m.user_id = %s"
)
