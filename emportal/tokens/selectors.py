"""Reads of API tokens: a user's list, and the user a key belongs to."""
from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from emportal.tokens.models import ApiToken

# last_used is written at most this often per token, so a script's requests stay reads.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def token_digest(key: str) -> str:
    """What is stored of a key (and looked up): its SHA-256, hex."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def token_list_for_user(user: Any) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user)


def token_for_key(key: str) -> ApiToken | None:
    """The token of this key, with its user, if the key is known and the user active."""
    token = ApiToken.objects.select_related("user").filter(digest=token_digest(key)).first()
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used is None or now - token.last_used > LAST_USED_RESOLUTION:
        stale = Q(last_used__isnull=True) | Q(last_used__lt=now - LAST_USED_RESOLUTION)
        ApiToken.objects.filter(stale, pk=token.pk).update(last_used=now)
        token.last_used = now
    return token


def key_from_authorization(header: str | bytes | None) -> str | None:
    """The key of an ``Authorization: Token <key>`` header, None for none or another scheme.

    A Token header that does not hold exactly one key gives "", which no token matches.
    """
    if isinstance(header, bytes):
        header = header.decode("latin-1")
    parts = (header or "").split()
    if not parts or parts[0].lower() != "token":
        return None
    return parts[1] if len(parts) == 2 else ""
