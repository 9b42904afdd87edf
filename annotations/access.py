"""Per-project role checks, used by every view, consumer and tile request.

A user outside a project gets 404 for anything in it (no leak that it exists); a
member below the required role gets 403.
"""
from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
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
