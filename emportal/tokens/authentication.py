"""DRF authentication by ``Authorization: Token <key>`` against the hashed tokens."""
from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from emportal.tokens.selectors import token_for_key


class ApiTokenAuthentication(TokenAuthentication):
    """DRF's TokenAuthentication (header parsing, 401 with ``WWW-Authenticate: Token``, no
    CSRF check) over :class:`~emportal.tokens.models.ApiToken` instead of DRF's one
    plain-text token per user."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        token = token_for_key(key)
        if token is None:
            raise exceptions.AuthenticationFailed("invalid or revoked token")
        return token.user, token
