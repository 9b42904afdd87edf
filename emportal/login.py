"""Login with a brake on password guessing: a few failures per user name and address, then a pause."""
from __future__ import annotations

from typing import Any

from django.contrib.auth import views as auth_views
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

MAX_FAILURES = 5
WINDOW_SECONDS = 15 * 60


def _key(request: HttpRequest) -> str:
    username = str(request.POST.get("username", "")).strip().lower()[:150]
    return f"login-failures:{request.META.get('REMOTE_ADDR', '')}:{username}"


class RateLimitedLoginView(auth_views.LoginView):
    """Django's login view; after MAX_FAILURES failed tries for one user name from one
    address within WINDOW_SECONDS, further tries are refused with 429 until the window passes."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        key = _key(request)
        if cache.get(key, 0) >= MAX_FAILURES:
            form = self.get_form()
            form.errors.clear()
            context = self.get_context_data(form=form, locked=True, minutes=WINDOW_SECONDS // 60)
            return self.render_to_response(context, status=429)
        response = super().post(request, *args, **kwargs)
        if response.status_code == 200:  # the form came back: the password was wrong
            try:
                cache.incr(key)
            except ValueError:
                cache.set(key, 1, WINDOW_SECONDS)
        else:
            cache.delete(key)
        return response
