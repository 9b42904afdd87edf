"""Websockets: one per volume (strokes, jobs of that volume) and one per project (jobs).

Consumers only check the role, join groups and forward events; the work is done by
services, which broadcast through emportal.realtime after their database change.
"""
from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.core.exceptions import PermissionDenied
from django.http import Http404

from annotations.access import project_for_user, volume_for_user
from emportal.realtime import project_group, volume_group

CLOSE_NOT_FOUND = 4404


class _ForwardingConsumer(AsyncJsonWebsocketConsumer):
    group: str = ""

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def forward(self, message: dict[str, Any]) -> None:
        await self.send_json(message["event"])


class VolumeConsumer(_ForwardingConsumer):
    async def connect(self) -> None:
        volume_id = int(self.scope["url_route"]["kwargs"]["volume_id"])
        try:
            self.volume, self.role = await database_sync_to_async(volume_for_user)(self.scope["user"], volume_id)
        except (Http404, PermissionDenied):
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.group = volume_group(volume_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello", "user": self.scope["user"].username, "role": self.role.label})

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        await self.send_json({"type": "error", "code": "unsupported",
                              "message": f"message type {content.get('type') if isinstance(content, dict) else None!r}"
                                         " is not supported"})


class ProjectConsumer(_ForwardingConsumer):
    async def connect(self) -> None:
        project_id = int(self.scope["url_route"]["kwargs"]["project_id"])
        try:
            await database_sync_to_async(project_for_user)(self.scope["user"], project_id)
        except (Http404, PermissionDenied):
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.group = project_group(project_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
