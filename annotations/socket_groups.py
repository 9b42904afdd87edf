"""One channel-layer membership per process and group, fanned out to the process's sockets.

With a membership per socket, every event cost two Redis round trips and a JSON encoding
per open socket of the group (16 sockets on a volume: ~30 round trips per stroke, more than
the stroke's own write); through a hub it costs two per process.

A hub sends an event the moment it arrives, then gathers what arrives in the next
:data:`FRAME_S` seconds into one frame per socket (``{"type": "batch", "events": [...]}``).
Sixteen painters echo ~30 strokes a second to every socket; each websocket frame costs the
event loop ~0.3 ms that the next stroke waits for, and a viewer redraws at most once a frame
anyway.
"""
from __future__ import annotations

import asyncio
import json
import logging
import weakref
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer

log = logging.getLogger(__name__)

FRAME_S = 0.05  # after a frame, a socket's next one gathers the events of this many seconds


class GroupHub:
    """This process's membership of one group: events arriving for it go to every local member socket."""

    def __init__(self, group: str) -> None:
        self.group = group
        self.members: set[AsyncWebsocketConsumer] = set()
        self.ready = asyncio.Event()
        self.channel = ""
        self.task: asyncio.Task[None] | None = None
        self.waiting: list[tuple[str, str | None]] = []  # (encoded event, channel name of the socket to skip)
        self.sender: asyncio.Task[None] | None = None

    async def open(self) -> None:
        layer = get_channel_layer()
        self.channel = await layer.new_channel()
        await layer.group_add(self.group, self.channel)
        self.task = asyncio.create_task(self._run(layer))
        self.ready.set()

    async def close(self) -> None:
        await self.ready.wait()
        tasks = [t for t in (self.task, self.sender) if t is not None]
        for task in tasks:  # the receiver must leave the layer's receive before another loop may enter it
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
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
            self.waiting.append((json.dumps(message["event"]), message.get("skip")))  # encoded once for all
            if self.sender is None or self.sender.done():
                self.sender = asyncio.create_task(self._send_waiting())

    async def _send_waiting(self) -> None:
        """Send what waits, then what arrived meanwhile every FRAME_S seconds, until nothing is left."""
        while self.waiting:
            events, self.waiting = self.waiting, []
            for member in list(self.members):
                name = getattr(member, "channel_name", None)
                texts = [text for text, skip in events if skip is None or skip != name]
                if not texts:
                    continue
                frame = texts[0] if len(texts) == 1 else '{"type": "batch", "events": [' + ", ".join(texts) + "]}"
                try:
                    await member.send(text_data=frame)
                except Exception as exc:  # noqa: BLE001 - one closing socket must not starve the others
                    log.warning("could not forward to a socket of %s: %s", self.group, exc)
            await asyncio.sleep(FRAME_S)


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, GroupHub]] = weakref.WeakKeyDictionary()


async def group_join(group: str, member: AsyncWebsocketConsumer) -> None:
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


async def group_leave(group: str, member: AsyncWebsocketConsumer) -> None:
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
