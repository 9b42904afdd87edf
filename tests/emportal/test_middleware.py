"""The middleware stack stays asynchronous under Daphne, and static files are still served."""
from __future__ import annotations

from typing import cast

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.http import StreamingHttpResponse
from django.test import AsyncClient
from django.utils.module_loading import import_string

pytestmark = pytest.mark.django_db


def test_every_middleware_is_async_capable_so_requests_do_not_share_one_thread() -> None:
    sync_only = [path for path in settings.MIDDLEWARE if not getattr(import_string(path), "async_capable", False)]
    assert sync_only == []


def test_static_files_are_served_through_the_asgi_handler() -> None:
    response = async_to_sync(AsyncClient().get)("/static/portal.css")
    assert response.status_code == 200
    body = b"".join(cast(StreamingHttpResponse, response).streaming_content) if response.streaming else response.content
    assert b"--text" in body  # the project's stylesheet, not a fallback page


def test_other_paths_pass_through_to_django() -> None:
    response = async_to_sync(AsyncClient().get)("/accounts/login/")
    assert response.status_code == 200
    assert b"csrfmiddlewaretoken" in response.content
