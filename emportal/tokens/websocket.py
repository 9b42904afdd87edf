"""Websocket handshakes with an API token: the token's user, no cookie, no origin check.

Browsers cannot set headers on a websocket, so the token comes either as
``Authorization: Token <key>`` (scripts) or as two offered subprotocols,
``["emportal.token", "<key>"]`` (browsers: ``new WebSocket(url, ["emportal.token", key])``);
the server then answers with the subprotocol ``emportal.token``, never the key. Query
strings are not read: they end up in access logs.

A handshake without a token goes to the session stack (cookie and origin check, which
guards the cookie against cross-site use; a token is no ambient credential, so it needs
none). A handshake with an unknown or revoked token is refused (HTTP 403), whatever its
cookie says. Consumers then apply the same role checks to ``scope["user"]`` either way.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from channels.db import database_sync_to_async
from channels.security.websocket import WebsocketDenier

from emportal.tokens.selectors import key_from_authorization, token_for_key

SUBPROTOCOL = "emportal.token"

Scope = MutableMapping[str, Any]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Any, Send], Awaitable[None]]


def token_key_from_scope(scope: Scope) -> tuple[str | None, bool]:
    """The key a handshake carries (None: none) and whether it came as a subprotocol."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            key = key_from_authorization(value)
            if key is not None:
                return key, False
    offered = list(scope.get("subprotocols") or [])
    if SUBPROTOCOL in offered:
        after = offered.index(SUBPROTOCOL) + 1
        return (offered[after] if after < len(offered) else ""), True
    return None, False


def _user_of(key: str) -> Any:
    token = token_for_key(key)
    return token.user if token is not None else None


class TokenOrSessionAuth:
    """ASGI middleware choosing between ``token_app`` (a token in the handshake) and
    ``session_app`` (none)."""

    def __init__(self, *, token_app: ASGIApp, session_app: ASGIApp) -> None:
        self.token_app = token_app
        self.session_app = session_app

    async def __call__(self, scope: Scope, receive: Any, send: Send) -> None:
        key, as_subprotocol = token_key_from_scope(scope)
        if key is None:
            return await self.session_app(scope, receive, send)
        user = await database_sync_to_async(_user_of)(key) if key else None
        if user is None:
            return await WebsocketDenier()(scope, receive, send)
        if as_subprotocol:
            send = _answering_subprotocol(send)
        return await self.token_app({**scope, "user": user}, receive, send)


def _answering_subprotocol(send: Send) -> Send:
    """A browser drops a socket whose handshake answer names none of the subprotocols it offered."""

    async def wrapped(message: dict[str, Any]) -> None:
        if message.get("type") == "websocket.accept" and not message.get("subprotocol"):
            message = {**message, "subprotocol": SUBPROTOCOL}
        await send(message)

    return wrapped
