"""Writes of API tokens: create (the key is returned once, never stored) and revoke."""
from __future__ import annotations

import secrets
from typing import Any

from django.http import Http404

from emportal.errors import ApplicationError
from emportal.tokens.models import ApiToken
from emportal.tokens.selectors import token_digest

KEY_PREFIX = "emp_"  # tells an EM Portal token apart in a config file or a secret scanner
MAX_TOKENS_PER_USER = 50
NAME_MAX_LENGTH = 100


def token_create(user: Any, name: str) -> tuple[ApiToken, str]:
    """A new token of ``user`` and its key; the key cannot be recovered later."""
    name = (name or "").strip()
    if not name:
        raise ApplicationError("give the token a name, e.g. the script or machine that uses it", code="invalid_name")
    if len(name) > NAME_MAX_LENGTH:
        raise ApplicationError(f"a token name has at most {NAME_MAX_LENGTH} characters", code="invalid_name")
    if ApiToken.objects.filter(user=user).count() >= MAX_TOKENS_PER_USER:
        raise ApplicationError(f"you have {MAX_TOKENS_PER_USER} tokens; revoke one first", code="too_many_tokens",
                               status_code=409)
    key = KEY_PREFIX + secrets.token_urlsafe(30)  # 40 characters, all valid in a header and a subprotocol
    token = ApiToken.objects.create(user=user, name=name, prefix=key[:len(KEY_PREFIX) + 4], digest=token_digest(key))
    return token, key


def token_revoke(user: Any, token_id: int) -> None:
    """Delete one of the user's tokens; it stops working with the next request. Another
    user's token is a 404, as if it did not exist."""
    deleted, _ = ApiToken.objects.filter(pk=token_id, user=user).delete()
    if not deleted:
        raise Http404("not found")
