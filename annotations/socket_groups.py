"""One channel-layer membership per process and group, fanned out to the process's sockets.

With a membership per socket, every event cost two Redis round trips and a JSON encoding
per open socket of the group (16 sockets on a volume: ~30 round trips per stroke, more than
the stroke's own write); through a hub it costs two per process.
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


class GroupHub:
    """This process's membership of one group: events arriving for it go to every local member socket."""

    def __init__(self, group: str) -> None:
        self.group = group
        self.members: set[AsyncWebsocketConsumer] = set()
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
            skip = message.get("skip")
            for member in list(self.members):
                if skip is not None and getattr(member, "channel_name", None) == skip:
                    continue
                try:
                    await member.send(text_data=text)
                except Exception as exc:  # noqa: BLE001 - one closing socket must not starve the others
                    log.warning("could not forward to a socket of %s: %s", self.group, exc)


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
