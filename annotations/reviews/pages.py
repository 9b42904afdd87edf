"""Pages of team review: the project dashboard, a volume's audit trail, the user's notifications.

Thin shells: they check the role and hand the TypeScript page (frontend/src/review/pages.ts)
what it cannot fetch itself; the lists come from the review REST API.
"""
from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from annotations import selectors
from annotations.access import project_for_user, volume_for_user
from annotations.models import Project, Role


def _assignment_choices(project: Project) -> dict[str, Any]:
    """Volumes with their label layers, and who may review or fix, for the manager's form."""
    volumes = [{"id": v.pk, "name": v.name, "shape_z": v.shape_z,
                "layers": [{"name": layer.name, "kind": layer.kind} for layer in v.layers.all()]}
               for v in selectors.volume_list_for_project(project).prefetch_related("layers")]
    members = [{"username": m.user.username, "role": Role(m.role).label}
               for m in project.memberships.select_related("user").order_by("user__username")]
    return {"volumes": volumes, "members": members}


@login_required
@ensure_csrf_cookie
def review_dashboard(request: HttpRequest, project_id: int) -> HttpResponse:
    project, role = project_for_user(request.user, project_id)
    is_manager = role >= Role.MANAGER
    return render(request, "reviews/dashboard.html", {
        "project": project, "role": role.label, "is_manager": is_manager,
        "choices": _assignment_choices(project) if is_manager else None,
    })


@login_required
@ensure_csrf_cookie
def volume_audit(request: HttpRequest, volume_id: int) -> HttpResponse:
    volume, role = volume_for_user(request.user, volume_id)
    return render(request, "reviews/audit.html", {"volume": volume, "role": role.label})


@login_required
@ensure_csrf_cookie
def notifications_page(request: HttpRequest) -> HttpResponse:
    # Everyone's own list: no project, so no role to check beyond being logged in.
    return render(request, "reviews/notifications.html", {})
