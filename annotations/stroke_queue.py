"""The per-process stroke queue of the volume websockets (group commit).

The strokes that reach the process's sockets while a batch is being written form the next
batch, which :func:`annotations.strokes.strokes_apply` writes under one lock, one
transaction and one thread hop; each stroke is acknowledged once its batch is written. A
lone stroke is a batch of one and waits for nothing.
"""
from __future__ import annotations

import asyncio
import weakref
from typing import Any

from channels.db import database_sync_to_async

from annotations import strokes
from annotations.models import Role, Volume

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
