"""The one door for live updates: services call `broadcast` after their database change.

Consumers join the groups named here and forward what arrives; nothing else talks to
the channel layer. Failures to reach Redis are logged, never raised: a lost live update
must not undo a saved stroke or a finished job.
"""
from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

log = logging.getLogger(__name__)


def volume_group(volume_id: int) -> str:
    return f"volume.{volume_id}"


def project_group(project_id: int) -> str:
    return f"project.{project_id}"


async def broadcast_async(group: str, event: dict[str, Any], *, skip: str | None = None) -> None:
    """:func:`broadcast` for async callers (consumers), without a thread hop.

    ``skip`` names the socket (its channel name) that needs no copy: the sender of a stroke,
    which has its ack.
    """
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await layer.group_send(group, {"type": "forward", "event": event, "skip": skip})
    except Exception as exc:  # noqa: BLE001 - as in broadcast
        log.warning("could not broadcast %s to %s: %s", event.get("type"), group, exc)


def broadcast(group: str, event: dict[str, Any]) -> None:
    """Send `event` (a JSON-able dict with a "type" key) to every socket in `group`."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, {"type": "forward", "event": event})
    except Exception as exc:  # noqa: BLE001 - a dead Redis must not fail the write that preceded it
        log.warning("could not broadcast %s to %s: %s", event.get("type"), group, exc)
