"""The account page: the user's API tokens, a form to create one (its key shown once) and
a Revoke button per token."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from emportal.errors import ApplicationError
from emportal.tokens import selectors, services


@login_required
@require_http_methods(["GET", "POST"])
def account_page(request: HttpRequest) -> HttpResponse:
    context: dict[str, object] = {}
    action = request.POST.get("action") if request.method == "POST" else None
    if action == "revoke":
        try:
            token_id = int(request.POST.get("token", ""))
        except ValueError:
            raise Http404("not found") from None
        services.token_revoke(request.user, token_id)
        return redirect("account")
    if action == "create":
        try:
            # Rendered in this answer, not redirected: the key must not travel through
            # the session or a URL, and cannot be shown again.
            context["new_token"], context["new_key"] = services.token_create(request.user,
                                                                             request.POST.get("name", ""))
        except ApplicationError as exc:
            context["error"] = exc.message
    elif request.method == "POST":
        raise Http404("unknown action")
    context["tokens"] = selectors.token_list_for_user(request.user)
    return render(request, "account.html", context, status=400 if "error" in context else 200)
