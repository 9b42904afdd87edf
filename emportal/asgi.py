"""ASGI entry point for Daphne: HTTP through Django, websockets through Channels.

Websockets authenticate with an API token in the handshake (emportal.tokens.websocket)
or else with the session cookie, behind the origin check that protects the cookie.
"""
from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emportal.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from annotations.routing import websocket_urlpatterns  # noqa: E402
from emportal.tokens.websocket import TokenOrSessionAuth  # noqa: E402

_sockets = URLRouter(websocket_urlpatterns)

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": TokenOrSessionAuth(token_app=_sockets,
                                        session_app=AllowedHostsOriginValidator(AuthMiddlewareStack(_sockets))),
    }
)
