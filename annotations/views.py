"""HTML pages. The viewer itself is the TypeScript app in frontend/, mounted on the volume page."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from annotations import selectors
from annotations.access import project_for_user, volume_for_user
from annotations.models import Role


@login_required
def home(request: HttpRequest) -> HttpResponse:
    projects = selectors.project_list_for_user(request.user)
    return render(request, "home.html", {"projects": projects})


@login_required
@ensure_csrf_cookie
def project_page(request: HttpRequest, project_id: int) -> HttpResponse:
    project, role = project_for_user(request.user, project_id)
    return render(request, "project.html", {
        "project": project, "role": role.label, "can_import": role >= Role.ANNOTATOR,
        "is_manager": role >= Role.MANAGER,
        "volumes": selectors.volume_list_for_project(project),
        "members": project.memberships.select_related("user").order_by("user__username"),
    })


@login_required
@ensure_csrf_cookie
def volume_page(request: HttpRequest, volume_id: int) -> HttpResponse:
    volume, role = volume_for_user(request.user, volume_id)
    return render(request, "volume.html", {"volume": volume, "role": role.label})


@login_required
@ensure_csrf_cookie
def jobs_page(request: HttpRequest, project_id: int) -> HttpResponse:
    project, role = project_for_user(request.user, project_id)
    return render(request, "jobs.html", {"project": project, "role": role.label})
