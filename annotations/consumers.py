"""Websockets: one per volume (strokes, jobs of that volume) and one per project (jobs).

Consumers only check the role, join groups and forward events; the work is done by
services, which broadcast through emportal.realtime after their database change.

Strokes go through a per-process queue (group commit): the strokes that reach the
process's sockets while a batch is being written form the next batch, which
:func:`annotations.strokes.strokes_apply` writes under one lock, one transaction and one
thread hop; each stroke is acknowledged once its batch is written. A lone stroke is a
batch of one and waits for nothing.

Events reach the sockets through one channel-layer membership per process and group
(:class:`GroupHub`), which hands each event to this process's sockets of that group.
With a membership per socket, every stroke cost two Redis round trips and a JSON
encoding per open socket of the volume (16 sockets: ~30 round trips per stroke, more
than the stroke's own write); now it costs two per process.
"""
from __future__ import annotations

import asyncio
import json
import logging
import weakref
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from django.core.exceptions import PermissionDenied
from django.http import Http404

from annotations import strokes
from annotations.access import project_for_user, volume_for_user
from annotations.models import Role, Volume
from emportal.errors import ApplicationError
from emportal.realtime import broadcast_async, project_group, volume_group

log = logging.getLogger(__name__)

CLOSE_NOT_FOUND = 4404
MAX_BATCH = 32  # strokes per batch: bounds how long one batch holds the layer's lock


class StrokeQueue:
    """The strokes waiting to be written, per volume, and the task that writes them in batches."""

    def __init__(self) -> None:
        self._pending: dict[int, list[tuple[Any, Role, Any, asyncio.Future[strokes.StrokeOutcome]]]] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}

    async def apply(self, volume: Volume, user: Any, role: Role, data: Any) -> strokes.StrokeOutcome:
        """Apply one stroke payload with the others that arrive meanwhile; raises its ApplicationError."""
        future: asyncio.Future[strokes.StrokeOutcome] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(volume.pk, []).append((user, role, data, future))
        if volume.pk not in self._tasks:
            self._tasks[volume.pk] = asyncio.create_task(self._drain(volume))
        # A socket closed meanwhile cancels its wait, never the batch its stroke is in.
        return await asyncio.shield(future)

    async def _drain(self, volume: Volume) -> None:
        batch: list[tuple[Any, Role, Any, asyncio.Future[strokes.StrokeOutcome]]] = []
        try:
            while self._pending.get(volume.pk):
                batch = self._pending[volume.pk][:MAX_BATCH]
                del self._pending[volume.pk][:MAX_BATCH]
                items = [(user, role, data) for user, role, data, _ in batch]
                try:
                    results: list[Any] = await database_sync_to_async(strokes.strokes_apply)(volume, items)
                except Exception:  # noqa: BLE001 - a batch that failed outright: each stroke alone, for its own error
                    results = []
                    for item in items:
                        try:
                            results += await database_sync_to_async(strokes.strokes_apply)(volume, [item])
                        except Exception as exc:  # noqa: BLE001 - handed to that stroke's socket
                            results.append(exc)
                for (_, _, _, future), result in zip(batch, results):
                    if future.done():
                        continue
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:  # normally nothing is left; if the loop is shutting down, nobody waits forever
            del self._tasks[volume.pk]
            for *_, future in batch + self._pending.pop(volume.pk, []):
                if not future.done():
                    future.cancel()


_queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, StrokeQueue] = weakref.WeakKeyDictionary()


def stroke_queue() -> StrokeQueue:
    """The stroke queue of the running event loop (one per process under Daphne)."""
    loop = asyncio.get_running_loop()
    queue = _queues.get(loop)
    if queue is None:
        queue = _queues[loop] = StrokeQueue()
    return queue


class GroupHub:
    """This process's membership of one group: events arriving for it go to every local member socket."""

    def __init__(self, group: str) -> None:
        self.group = group
        self.members: set[_ForwardingConsumer] = set()
        self.ready = asyncio.Event()
        self.channel = ""
        self.task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        layer = get_channel_layer()
        self.channel = await layer.new_channel()
        await layer.group_add(self.group, self.channel)
        self.task = asyncio.create_task(self._run(layer))
        self.ready.set()

    async def close(self) -> None:
        await self.ready.wait()
        if self.task is not None:  # wait for it to leave the layer's receive, or another loop could not enter it
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        try:
            await get_channel_layer().group_discard(self.group, self.channel)
        except Exception as exc:  # noqa: BLE001 - a dead Redis expires the membership itself
            log.warning("could not leave %s: %s", self.group, exc)

    async def _run(self, layer: Any) -> None:
        while True:
            try:
                message = await layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis away: try again, as a consumer would
                log.warning("receive on %s failed: %s", self.group, exc)
                await asyncio.sleep(1.0)
                continue
            if message.get("type") != "forward":
                continue
            text = json.dumps(message["event"])  # encoded once for all members
            for member in list(self.members):
                try:
                    await member.send(text_data=text)
                except Exception as exc:  # noqa: BLE001 - one closing socket must not starve the others
                    log.warning("could not forward to a socket of %s: %s", self.group, exc)


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, GroupHub]] = weakref.WeakKeyDictionary()


async def group_join(group: str, member: _ForwardingConsumer) -> None:
    """Let `member` receive the group's events (through its process's hub, opened on first use)."""
    hubs = _hubs.setdefault(asyncio.get_running_loop(), {})
    hub = hubs.get(group)
    if hub is None:
        hub = hubs[group] = GroupHub(group)
        hub.members.add(member)
        try:
            await hub.open()
        except BaseException:
            if hubs.get(group) is hub:
                del hubs[group]
            raise
    else:
        hub.members.add(member)
        await hub.ready.wait()


async def group_leave(group: str, member: _ForwardingConsumer) -> None:
    hubs = _hubs.get(asyncio.get_running_loop(), {})
    hub = hubs.get(group)
    if hub is None:
        return
    hub.members.discard(member)
    if not hub.members:
        del hubs[group]  # at once, so a socket joining meanwhile opens a new hub
        # Left in the background: a closing socket waits for no Redis round trip.
        _closing.add(task := asyncio.create_task(hub.close()))
        task.add_done_callback(_closing.discard)


_closing: set[asyncio.Task[None]] = set()


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
                outcome = await stroke_queue().apply(self.volume, self.scope["user"], self.role, stroke)
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
        await self.join(project_group(project_id))
        await self.accept()
