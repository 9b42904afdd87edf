"""In-process websocket clients for the consumers, as a given user (no cookie handshake)."""
from __future__ import annotations

from typing import Any

from channels.testing import WebsocketCommunicator

from annotations.consumers import ProjectConsumer, VolumeConsumer


async def receive_messages(communicator: WebsocketCommunicator, timeout: float = 1) -> list[dict[str, Any]]:
    """The messages of the next frame: one, or the events of a batch frame (annotations.socket_groups)."""
    frame = await communicator.receive_json_from(timeout=timeout)
    return frame["events"] if frame.get("type") == "batch" else [frame]


def volume_socket(user: Any, volume_id: int) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(VolumeConsumer.as_asgi(), f"/ws/volumes/{volume_id}/")
    communicator.scope["user"] = user
    communicator.scope["url_route"] = {"kwargs": {"volume_id": volume_id}}
    return communicator


def project_socket(user: Any, project_id: int) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(ProjectConsumer.as_asgi(), f"/ws/projects/{project_id}/")
    communicator.scope["user"] = user
    communicator.scope["url_route"] = {"kwargs": {"project_id": project_id}}
    return communicator
