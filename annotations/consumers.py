"""Websockets: one per volume (strokes, jobs of that volume, who else is there) and one per project (jobs).

Consumers only check the role, join groups and forward events; the work is done by
services, which broadcast through emportal.realtime after their database change.

Strokes go through the process's stroke queue (:mod:`annotations.stroke_queue`, group
commit) and events reach the sockets through one channel-layer membership per process and
group (:mod:`annotations.socket_groups`).
"""
from __future__ import annotations

import secrets
import time
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.core.exceptions import PermissionDenied
from django.http import Http404

from annotations import strokes
from annotations.access import project_for_user, volume_for_user
from annotations.serializers import CompleteSliceInput, StrokeRefInput, stroke_input_validated, validated
from annotations.socket_groups import group_join, group_leave
from annotations.stroke_queue import stroke_queue
from emportal.errors import ApplicationError, error_body
from emportal.parsers import json_loads
from emportal.realtime import broadcast_async, project_group, volume_group

CLOSE_NOT_FOUND = 4404
PRESENCE_MIN_S = 0.1  # a socket's crosshair goes out at most ten times a second


def _focus(value: Any, shape: tuple[int, ...]) -> list[int] | None:
    """A crosshair [z, y, x] inside the volume, or None for anything else."""
    if not isinstance(value, list) or len(value) != 3:
        return None
    if not all(type(v) is int and 0 <= v < n for v, n in zip(value, shape)):
        return None
    return value


class _ForwardingConsumer(AsyncJsonWebsocketConsumer):
    group: str = ""

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels runs close_old_connections on the one database thread before every
        # message: a hop that queues behind the stroke batch being written, so a stroke
        # could not even join the next batch. Every handler here reaches the database
        # through database_sync_to_async, which does the same on entry and exit.
        if message.get("type") == "websocket.receive":
            await self.websocket_receive(message)
        else:
            await super().dispatch(message)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        """A frame that is not JSON text is answered with an error, as REST answers such a body."""
        try:
            content = await self.decode_json(text_data) if text_data else None
        except ValueError as exc:
            await self.send_json({"type": "error", "code": "parse_error", "message": f"JSON parse error - {exc}"})
            return
        if content is None:
            await self.send_json({"type": "error", "code": "parse_error", "message": "send JSON text frames"})
            return
        await self.receive_json(content, **kwargs)

    @classmethod
    async def decode_json(cls, text_data: str) -> Any:
        return json_loads(text_data)

    async def join(self, group: str) -> None:
        await group_join(group, self)
        self.group = group

    async def disconnect(self, code: int) -> None:
        if self.group:
            await group_leave(self.group, self)


class VolumeConsumer(_ForwardingConsumer):
    async def connect(self) -> None:
        volume_id = int(self.scope["url_route"]["kwargs"]["volume_id"])
        try:
            self.volume, self.role = await database_sync_to_async(volume_for_user)(self.scope["user"], volume_id)
        except (Http404, PermissionDenied):
            await self.close(code=CLOSE_NOT_FOUND)
            return
        await self.join(volume_group(volume_id))
        await self.accept()
        version = await database_sync_to_async(
            lambda: max(self.volume.layers.values_list("version", flat=True), default=0))()
        await self.send_json({"type": "hello", "user": self.scope["user"].username, "role": self.role.label,
                              "version": version})
        # Presence: a socket that says where it is joins it; the others answer with where they
        # are (the server keeps no list). Sockets that never say (scripts) see and cause nothing.
        self.presence_id = secrets.token_hex(6)
        self.presence_sent = 0.0
        self.presence_joined = False

    async def _presence(self, focus: list[int] | None, **flags: bool) -> None:
        event = {"type": "presence", "id": self.presence_id, "user": self.scope["user"].username,
                 "focus": focus, **flags}
        await broadcast_async(self.group, event, skip=self.channel_name)

    async def disconnect(self, code: int) -> None:
        if getattr(self, "presence_joined", False) and self.group:
            await self._presence(None, left=True)
        await super().disconnect(code)

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
                outcome = await stroke_queue().apply(self.volume, self.scope["user"], self.role,
                                                     stroke_input_validated(stroke))
                await self.send_json({"type": "ack", "uuid": outcome.uuid, "version": outcome.version})
                if outcome.event is not None:  # the echo after the ack, to the others; a resent duplicate has none
                    await broadcast_async(self.group, outcome.event, skip=self.channel_name)
            elif kind in ("undo", "redo"):
                uid = content.get("uuid")
                ref = validated(StrokeRefInput, content)
                toggle = strokes.stroke_undo if kind == "undo" else strokes.stroke_redo
                await database_sync_to_async(toggle)(self.volume, self.scope["user"], self.role, str(ref["uuid"]))
            elif kind == "presence":
                focus = _focus(content.get("focus"), tuple(self.volume.shape))
                if focus is None:
                    raise ApplicationError("presence needs focus [z, y, x] inside the volume")
                now = time.monotonic()
                if not self.presence_joined:
                    self.presence_joined = True
                    self.presence_sent = now
                    await self._presence(focus, joined=True)
                elif now - self.presence_sent >= PRESENCE_MIN_S:
                    self.presence_sent = now
                    await self._presence(focus)
            elif kind == "mark_complete":
                await database_sync_to_async(strokes.slice_mark_complete)(
                    self.volume, self.scope["user"], self.role, **validated(CompleteSliceInput, content))
            else:
                raise ApplicationError(f"message type {kind!r} is not supported", code="unsupported")
        except ApplicationError as exc:
            await self.send_error(exc, uid)

    async def send_error(self, exc: ApplicationError, uid: Any = None) -> None:
        """The API's error shape (emportal.errors), as a message of type "error"."""
        error = {"type": "error", **error_body(exc)["error"]}
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
        await self.join(project_group(project_id))
        await self.accept()
