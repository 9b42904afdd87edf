"""Results pages: a volume's report (plots, cell table, downloads), a project's volumes side by
side, and the 3D view of one cell. The pages are shells; frontend/src/results draws them."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from annotations.access import project_for_user, volume_for_user
from annotations.models import Role
from segmentation.reports import selectors


@login_required
@ensure_csrf_cookie
def volume_results_page(request: HttpRequest, volume_id: int) -> HttpResponse:
    volume, role = volume_for_user(request.user, volume_id)
    return render(request, "results.html", {"volume": volume, "role": role.label,
                                            "can_run": role >= Role.ANNOTATOR})


@login_required
def project_results_page(request: HttpRequest, project_id: int) -> HttpResponse:
    project, role = project_for_user(request.user, project_id)
    return render(request, "results_project.html", {"project": project, "role": role.label})


@login_required
def cell_3d_page(request: HttpRequest, report_id: int, cell_id: int) -> HttpResponse:
    report, role = selectors.report_for_user(request.user, report_id)
    return render(request, "results_3d.html", {"report": report, "volume": report.volume, "cell_id": cell_id,
                                               "role": role.label})
