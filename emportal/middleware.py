"""Middleware that stays asynchronous under Daphne: WhiteNoise, and the API's request limits.

WhiteNoise 6 is a sync-only middleware. Django adapts a sync middleware in an ASGI
stack by running it on the one thread that all "thread-sensitive" sync code shares, and
that thread then waits for everything below it: every HTTP request of the process,
tiles included, went through that single thread one at a time, and strokes queued behind
tiles. This subclass answers static files the same way and otherwise awaits the next
handler, so the stack stays async and only sync views themselves use that thread.
"""
from __future__ import annotations

from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from whitenoise.middleware import WhiteNoiseMiddleware

from emportal.errors import ApplicationError, body_too_large, error_response


class AsyncWhiteNoiseMiddleware(WhiteNoiseMiddleware):
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Any = None, **kwargs: Any) -> None:
        super().__init__(get_response, **kwargs)
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        return super().__call__(request)

    async def __acall__(self, request: Any) -> Any:
        if self.autorefresh:
            static_file = await sync_to_async(self.find_file, thread_sensitive=False)(request.path_info)
        else:
            static_file = self.files.get(request.path_info)
        if static_file is not None:
            return await sync_to_async(self.serve, thread_sensitive=False)(static_file, request)
        return await self.get_response(request)


class RequestLimitsMiddleware:
    """API requests the app cannot serve get its JSON error shape before any view runs.

    - A body over the size limit (Content-Length) is a 413 naming the limit, not Django's
      bare HTML "Bad Request"; uploads (multipart) are held to ``UPLOAD_MAX_BYTES``, other
      bodies to ``DATA_UPLOAD_MAX_MEMORY_SIZE``.
    - An integer URL parameter outside the database's signed 64-bit range is a 404 on
      every route: the database driver raises OverflowError (a 500) for such ids, in the
      ORM's foreign-key lookups and the raw SQL of the tile path alike.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        return _too_large(request) or self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> Any:
        return _too_large(request) or await self.get_response(request)

    # Async, so that Daphne's handler awaits it instead of hopping to the sync thread.
    async def process_view(self, request: HttpRequest, view: Any, args: Any, kwargs: dict[str, Any]) -> Any:
        if any(isinstance(v, int) and not -DB_INT_LIMIT <= v < DB_INT_LIMIT for v in kwargs.values()):
            if _is_api(request):
                return error_response(ApplicationError("Not found.", code="not_found", status_code=404))
            raise Http404("no such id")
        return None


DB_INT_LIMIT = 2**63
_MULTIPART_SLACK = 1024**2  # the form fields and boundaries around an uploaded file


def _is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith("/api/")


def _too_large(request: HttpRequest) -> HttpResponse | None:
    if not _is_api(request):
        return None
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None  # Django refuses it itself
    if request.META.get("CONTENT_TYPE", "").startswith("multipart/form-data"):
        limit: int | None = settings.UPLOAD_MAX_BYTES + _MULTIPART_SLACK
    else:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if limit is not None and length > limit:
        return error_response(body_too_large(limit))
    return None
