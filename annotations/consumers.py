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

from annotations import strokes
from annotations.access import project_for_user, volume_for_user
from emportal.errors import ApplicationError
from emportal.realtime import broadcast_async, project_group, volume_group

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
        version = await database_sync_to_async(
            lambda: max(self.volume.layers.values_list("version", flat=True), default=0))()
        await self.send_json({"type": "hello", "user": self.scope["user"].username, "role": self.role.label,
                              "version": version})

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """Strokes, undo/redo and completeness marks; the services broadcast the outcome."""
        kind = content.get("type") if isinstance(content, dict) else None
        uid = None
        try:
            if kind == "stroke":
                stroke = content.get("stroke")
                uid = stroke.get("uuid") if isinstance(stroke, dict) else None
                if not isinstance(stroke, dict):
                    raise ApplicationError("a stroke message needs a stroke object")
                outcome = await database_sync_to_async(strokes.stroke_apply)(
                    self.volume, self.scope["user"], self.role, stroke, announce=False)
                await self.send_json({"type": "ack", "uuid": outcome.uuid, "version": outcome.version})
                if outcome.event is not None:  # the echo after the ack; a resent duplicate has none
                    await broadcast_async(self.group, outcome.event)
            elif kind in ("undo", "redo"):
                uid = content.get("uuid")
                toggle = strokes.stroke_undo if kind == "undo" else strokes.stroke_redo
                await database_sync_to_async(toggle)(self.volume, self.scope["user"], self.role, uid)
            elif kind == "mark_complete":
                await database_sync_to_async(strokes.slice_mark_complete)(
                    self.volume, self.scope["user"], self.role, axis=content.get("axis"),
                    index=content.get("index"), complete=bool(content.get("complete", True)))
            else:
                raise ApplicationError(f"message type {kind!r} is not supported", code="unsupported")
        except ApplicationError as exc:
            error = {"type": "error", "code": exc.code, "message": exc.message}
            if uid is not None:
                error["uuid"] = str(uid)
            await self.send_json(error)


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
