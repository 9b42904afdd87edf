"""One error shape for the whole API: {"error": {"code": ..., "message": ..., "detail": ...}}."""
from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler


class ApplicationError(Exception):
    """A refusal the user can act on; services raise it, the handler shapes it."""

    def __init__(self, message: str, *, code: str = "invalid", status_code: int = 400,
                 detail: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status_code = status_code
        self.detail = detail


def error_body(exc: ApplicationError) -> dict[str, Any]:
    """The JSON body of an application error: ``{"error": {"code", "message"[, "detail"]}}``."""
    body = {"code": exc.code, "message": exc.message}
    if exc.detail is not None:
        body["detail"] = exc.detail
    return {"error": body}


def error_response(exc: ApplicationError) -> JsonResponse:
    """An application error as a plain Django response, for middleware that answers before DRF."""
    return JsonResponse(error_body(exc), status=exc.status_code)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's 404 handler: the API's JSON error under /api/, the HTML page elsewhere."""
    if request.path_info.startswith("/api/"):
        return error_response(ApplicationError("Not found.", code="not_found", status_code=404))
    return page_not_found(request, exception or Http404())


def body_too_large(limit: int) -> ApplicationError:
    return ApplicationError(f"the request body is larger than the {limit / 1024**2:.1f} MB limit",
                            code="too_large", status_code=413)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc), status=exc.status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        body = {"code": "invalid", "message": "The request is not valid.", "detail": response.data}
    else:
        detail = response.data.get("detail", "") if isinstance(response.data, dict) else response.data
        code = getattr(detail, "code", None) or ("not_found" if response.status_code == status.HTTP_404_NOT_FOUND
                                                  else "error")
        body = {"code": str(code), "message": str(detail)}
    response.data = {"error": body}
    return response
