"""Coarser levels of a label layer, brought up to date just after a stroke is acknowledged.

A stroke writes level 0 before its ack; recomputing the coarser levels costs as much
again, and the painter sees level 0 (or their own preview) while painting. So strokes
hand their changed box to one background thread per process, which recomputes the
pyramid under the layer's file lock. It lets boxes gather for up to ``delay`` seconds
first and writes each coarse chunk once for all of them: at 16 painters an update per
stroke competes with the next stroke for this process's GIL and lengthens the latency tail
(docs/notes/benchmarks-2026-11-26.md), and merged it costs a fraction.

Whoever reads a coarser level in this process calls :func:`wait` first (the label tile
views do), so a tile never shows a level older than the strokes already acknowledged.
:func:`flush` waits for everything (backups, tests, process exit).
"""
from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from annotations.imaging import omezarr

log = logging.getLogger(__name__)

Box = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]
Key = tuple[str, str]  # (volume store path, layer name)
LockFactory = Callable[[], AbstractContextManager[object]]


class PyramidUpdater:
    """A queue of changed boxes per layer and the thread that works it off."""

    def __init__(self, delay: float = 0.2) -> None:
        self.delay = delay
        self._cond = threading.Condition()
        self._readers = 0  # threads in wait(): they end the gathering at once
        self._pending: dict[Key, list[Box]] = {}
        self._locks: dict[Key, LockFactory] = {}
        self._submitted: dict[Key, int] = {}
        self._done: dict[Key, int] = {}
        self._thread: threading.Thread | None = None

    def submit(self, dest: Path, layer: str, box: Box, lock: LockFactory) -> None:
        """Queue `box` (level-0 voxels) of `layer` for a pyramid update."""
        key = (str(dest), layer)
        with self._cond:
            boxes = self._pending.setdefault(key, [])
            if box not in boxes:
                boxes.append(box)
            self._locks[key] = lock
            self._submitted[key] = self._submitted.get(key, 0) + 1
            self._start()
            self._cond.notify_all()

    def wait(self, dest: Path | str, layer: str, timeout: float = 10.0) -> bool:
        """Block until every box submitted so far for `layer` is in its pyramid; False on timeout."""
        key = (str(dest), layer)
        deadline = time.monotonic() + timeout
        with self._cond:
            target = self._submitted.get(key, 0)
            if self._done.get(key, 0) >= target:
                return True
            self._readers += 1
            self._cond.notify_all()
            try:
                while self._done.get(key, 0) < target:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._cond.wait(left)
            finally:
                self._readers -= 1
        return True

    def flush(self, timeout: float = 30.0) -> bool:
        """Block until every submitted box of every layer is in its pyramid."""
        with self._cond:
            keys = list(self._submitted)
        return all(self.wait(Path(d), layer, timeout) for d, layer in keys)

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="label-pyramid", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending:
                    self._cond.wait()
                gathered = time.monotonic() + self.delay
                while not self._readers and (left := gathered - time.monotonic()) > 0:
                    self._cond.wait(left)
                work = self._pending
                self._pending = {}
                marks = {key: self._submitted[key] for key in work}
                locks = {key: self._locks[key] for key in work}
            for key, boxes in work.items():
                dest, layer = key
                try:
                    with locks[key]():
                        omezarr.update_label_pyramid_boxes(Path(dest), layer, boxes)
                except Exception:  # noqa: BLE001 - log and go on: level 0 is right, the log replays
                    log.exception("label pyramid update of %s/%s failed", dest, layer)
                with self._cond:
                    self._done[key] = max(self._done.get(key, 0), marks[key])
                    self._cond.notify_all()

    def _after_fork(self) -> None:
        # A forked child (a Celery worker) has no thread and owes no updates of its parent.
        self.__init__()  # type: ignore[misc]


updater = PyramidUpdater()
submit = updater.submit
wait = updater.wait
flush = updater.flush

os.register_at_fork(after_in_child=updater._after_fork)
atexit.register(updater.flush)
