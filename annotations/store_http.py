"""A volume's OME-Zarr store over HTTP, for Neuroglancer, webKnossos and scripts.

The store is served as it lies on disk (image levels at the root, label layers under
``labels/<name>/``), so any NGFF reader finds the image, its label groups and their
class names. Two doors lead to the same files:

- ``/api/volumes/<id>/store/<path>``: the session or ``Authorization: Token <key>``,
  with the role check of tiles (any member reads; anyone else gets 404).
- ``/stores/<signed>/<path>``: a link minted by ``GET /api/volumes/<id>/store-link/``.
  Neuroglancer fetches chunks cross-origin, where it can send neither our cookie nor a
  custom header, and a token in a URL would be a lasting key in every log. The link is
  signed with SECRET_KEY, names one volume and one user, expires after
  :data:`LINK_SECONDS`, dies when the user's password changes, and is checked against
  the user's membership at every request, so removing a member closes it at once.

Both answer GET, HEAD and OPTIONS (CORS preflight), single byte ranges (206, 416 for a
range outside the file), ETag revalidation, and ``Access-Control-Allow-Origin`` only for
the origins in ``EMPORTAL_CORS_ORIGINS`` (never with credentials). A path is served only
if it names a regular file inside the store: no ``..``, no hidden files (the partial
folders of writes in progress), no symlink leading out.
"""
from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.access import ready_volume_row_for_request, volume_for_user
from annotations.models import Membership, Volume
from emportal.errors import ApplicationError

#: How long a minted store link works: a working session in Neuroglancer.
LINK_SECONDS = 8 * 3600
_LINK_SALT = "emportal.stores.link"
# Files a zarr reader asks for by name although they start with a dot.
_ZARR_METADATA = {".zattrs", ".zarray", ".zgroup", ".zmetadata"}
_JSON_FILES = _ZARR_METADATA | {"zarr.json"}
_PART = re.compile(r"^[A-Za-z0-9_.-]{1,255}$")
_RANGE = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")
_BLOCK = 64 * 1024
_METHODS = "GET, HEAD, OPTIONS"


# --------------------------------------------------------------------------- signed links


@dataclass(frozen=True)
class StoreLink:
    """A signed prefix that reads one volume's store as one user until ``expires`` (Unix seconds)."""

    token: str
    expires: int


def _password_mark(user: Any) -> str:
    # A password change ends the user's sessions; it ends their store links too.
    return str(user.get_session_auth_hash())[:16]


def store_link_create(user: Any, volume_id: int, *, now: float | None = None) -> StoreLink:
    """Sign a store link of ``volume_id`` for ``user`` (who must already have been checked)."""
    import time

    signer = signing.TimestampSigner(salt=_LINK_SALT, sep=".")
    token = signer.sign_object({"v": int(volume_id), "u": int(user.pk), "p": _password_mark(user)})
    issued = time.time() if now is None else now
    return StoreLink(token=token, expires=int(issued) + LINK_SECONDS)


def _store_root_for_link(token: str) -> Path:
    """The store a signed link opens, if it is intact, young enough and its user still a member."""
    try:
        data = signing.TimestampSigner(salt=_LINK_SALT, sep=".").unsign_object(token, max_age=LINK_SECONDS)
        volume_id, user_id, mark = int(data["v"]), int(data["u"]), str(data["p"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise Http404("not found") from None
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None or _password_mark(user) != mark:
        raise Http404("not found")
    zarr_path = (Volume.objects.filter(pk=volume_id, state=Volume.State.READY,
                                       project__in=Membership.objects.filter(user_id=user_id).values("project_id"))
                 .values_list("zarr_path", flat=True).first())
    if not zarr_path:
        raise Http404("not found")
    return Path(settings.MEDIA_ROOT) / zarr_path


# --------------------------------------------------------------------------- paths


def store_file(root: Path, path: str) -> Path:
    """The regular file ``path`` names inside the store at ``root``; Http404 for anything else.

    Each part is a plain name (letters, digits, ``_.-``), none ``.`` or ``..``, none hidden
    except zarr's metadata files; the resolved file must lie inside the resolved store.
    """
    parts = path.split("/")
    for part in parts:
        if not _PART.match(part) or part in (".", "..") or (part.startswith(".") and part not in _ZARR_METADATA):
            raise Http404("not found")
        if part.endswith(".partial"):  # a chunk being replaced (zarr's atomic write)
            raise Http404("not found")
    try:
        base = root.resolve(strict=True)
        target = base.joinpath(*parts).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        raise Http404("not found") from None
    if base not in target.parents or not target.is_file():
        raise Http404("not found")
    return target


# --------------------------------------------------------------------------- responses


class _Unsatisfiable(Exception):
    pass


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive ``(first, last)`` byte a ``Range`` header asks of a ``size``-byte file.

    None means the whole file: no header, a unit other than bytes, or several ranges
    (which HTTP lets a server answer whole). Raises :class:`_Unsatisfiable` for a
    malformed bytes range or one that starts past the end (answered 416).
    """
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes":
        return None
    if "," in spec:
        return None
    match = _RANGE.match(spec)
    if match is None or match.group(1) == match.group(2) == "":
        raise _Unsatisfiable(header)
    first_raw, last_raw = match.groups()
    if first_raw == "":  # the last N bytes
        n = int(last_raw)
        if n == 0 or size == 0:
            raise _Unsatisfiable(header)
        return max(0, size - n), size - 1
    first = int(first_raw)
    last = size - 1 if last_raw == "" else min(int(last_raw), size - 1)
    if first >= size or (last_raw != "" and int(last_raw) < first):
        raise _Unsatisfiable(header)
    return first, last


class _Slice:
    """Reads ``length`` bytes of an open file from its current offset, then stops."""

    def __init__(self, handle: IO[bytes], length: int) -> None:
        self._handle, self._left = handle, length

    def read(self, size: int = -1) -> bytes:
        want = self._left if size is None or size < 0 else min(size, self._left)
        data = self._handle.read(want) if want > 0 else b""
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._handle.close()


def _content_type(path: Path) -> str:
    return "application/json" if path.name in _JSON_FILES else "application/octet-stream"


def file_response(request: HttpRequest, path: Path) -> HttpResponseBase:
    """Stream ``path`` as GET or HEAD asked: the whole file, one byte range, or 304/416."""
    try:
        handle = path.open("rb")
    except OSError:
        raise Http404("not found") from None
    try:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise Http404("not found")
        size = info.st_size
        # Chunks are replaced by rename, never rewritten in place: a new inode or mtime is a new file.
        etag = f'"{info.st_ino:x}-{info.st_mtime_ns:x}-{size:x}"'
        response = _answer(request, handle, path, size, etag)
    except BaseException:
        handle.close()
        raise
    if request.method == "HEAD" or response.status_code in (304, 416):
        handle.close()
    response["ETag"] = etag
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "private, no-cache"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _answer(request: HttpRequest, handle: IO[bytes], path: Path, size: int, etag: str) -> HttpResponseBase:
    if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
        return HttpResponse(status=304)
    header = request.headers.get("Range")
    if_range = request.headers.get("If-Range")
    if if_range is not None and if_range.strip() != etag:
        header = None  # the file changed since the client's first part: send it whole
    try:
        span = byte_range(header, size)
    except _Unsatisfiable:
        refusal = HttpResponse(status=416)
        refusal["Content-Range"] = f"bytes */{size}"
        return refusal
    first, last = span if span is not None else (0, size - 1)
    length = max(0, last - first + 1)
    response: HttpResponseBase
    if request.method == "HEAD":
        response = HttpResponse(status=206 if span is not None else 200, content_type=_content_type(path))
    elif span is None:
        response = FileResponse(handle, content_type=_content_type(path))
    else:
        handle.seek(first)
        response = FileResponse(_Slice(handle, length), content_type=_content_type(path), status=206)
    if span is not None:
        response["Content-Range"] = f"bytes {first}-{last}/{size}"
    response["Content-Length"] = str(length)
    return response


def _cors(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
    """Allow the configured origins to read the answer; never with credentials."""
    origin = request.headers.get("Origin")
    if origin is not None and origin in settings.EMPORTAL_CORS_ORIGINS:
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Expose-Headers"] = "Content-Length, Content-Range, Accept-Ranges, ETag"
        if request.method == "OPTIONS":
            response["Access-Control-Allow-Methods"] = _METHODS
            response["Access-Control-Allow-Headers"] = "Range, Authorization, If-None-Match, If-Range"
            response["Access-Control-Max-Age"] = "3600"
    patch_vary_headers(response, ("Origin",))
    return response


def _serve(request: HttpRequest, root_of: Any, path: str) -> HttpResponseBase:
    if request.method == "OPTIONS":  # a preflight carries no credentials: answer it before any check
        response: HttpResponseBase = HttpResponse(status=204)
        response["Allow"] = _METHODS
        return _cors(request, response)
    if request.method not in ("GET", "HEAD"):
        response = HttpResponse(status=405)
        response["Allow"] = _METHODS
        return _cors(request, response)
    try:
        response = file_response(request, store_file(root_of(), path))
    except Http404:
        response = HttpResponse(b"not found\n", status=404, content_type="text/plain")
    except PermissionDenied:  # an unknown or revoked API token
        response = HttpResponse(b"invalid or revoked token\n", status=403, content_type="text/plain")
    return _cors(request, response)


# --------------------------------------------------------------------------- views


@csrf_exempt  # read-only methods only; the decorator keeps OPTIONS out of the CSRF machinery
def volume_store_file(request: HttpRequest, volume_id: int, path: str) -> HttpResponseBase:
    """A file of the volume's store for a member, by session or API token (as tiles)."""
    def root() -> Path:
        return Path(settings.MEDIA_ROOT) / ready_volume_row_for_request(request, volume_id)["zarr_path"]

    response = _serve(request, root, path)
    patch_vary_headers(response, ("Cookie", "Authorization"))  # the answer depends on who asks
    return response


@csrf_exempt
def signed_store_file(request: HttpRequest, token: str, path: str) -> HttpResponseBase:
    """A file of the store a signed link opens (see the module notes)."""
    return _serve(request, lambda: _store_root_for_link(token), path)


class StoreLinkOutput(serializers.Serializer):
    url = serializers.URLField(help_text="absolute URL of the store's root, ending in '/'")
    expires = serializers.IntegerField(help_text="Unix time after which the link stops working")
    zarr_format = serializers.ChoiceField(choices=[2, 3])
    ngff_version = serializers.CharField()
    layers = serializers.ListField(child=serializers.CharField(), help_text="label layers under labels/<name>/")
    neuroglancer = serializers.URLField(help_text="the Neuroglancer app to open the store in")


class StoreLinkApi(APIView):
    @extend_schema(responses=StoreLinkOutput)
    def get(self, request: Request, volume_id: int) -> Response:
        """A signed, expiring URL of the volume's OME-Zarr for Neuroglancer or webKnossos."""
        volume, _ = volume_for_user(request.user, volume_id)
        if volume.state != Volume.State.READY:
            raise ApplicationError(f"volume is {volume.state}", code="volume_not_ready",
                                   status_code=status.HTTP_409_CONFLICT)
        link = store_link_create(request.user, volume.pk)
        # the route needs a file name; the link is the folder above it
        url = request.build_absolute_uri(reverse("store-signed", kwargs={"token": link.token, "path": "x"}))[:-1]
        ngff, layers = _store_description(Path(settings.MEDIA_ROOT) / volume.zarr_path)
        return Response(StoreLinkOutput({"url": url, "expires": link.expires, "zarr_format": 3 if ngff == "0.5" else 2,
                                         "ngff_version": ngff, "layers": layers,
                                         "neuroglancer": settings.EMPORTAL_NEUROGLANCER_URL}).data)


def _store_description(root: Path) -> tuple[str, list[str]]:
    from annotations.imaging import omezarr

    try:
        info = omezarr.read_info(root)
    except (OSError, ValueError) as exc:
        raise ApplicationError("the volume's store cannot be read on the server", code="store_unreadable",
                               status_code=status.HTTP_503_SERVICE_UNAVAILABLE) from exc
    return info.ngff_version, list(info.labels)
