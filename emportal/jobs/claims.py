"""Units of one job's work shared by several tasks through files in the job's work folder.

A job that splits its work into numbered units (a segment job's blocks, a report's groups of
cells) lets its own task and helper tasks on any worker of any machine run them: whoever is
free claims a unit nobody has claimed and runs it. Everything lives in one folder on the
shared MEDIA_ROOT, so no broker or database round trip decides who runs what:

* ``<prefix>-<i>.claim``: created exclusively (atomic on a local filesystem and on NFS v3+),
  holding the claimer's ``host:pid``, touched every few seconds while the unit runs;
* ``<prefix>-<i><suffix>``: the unit's result, written to a temporary name and renamed into
  place last, so its presence says the unit is done.

A claim not touched for ``stale_seconds`` belongs to a worker that died and is taken over.
Two workers taking over one stale claim both run the unit, so a unit must be idempotent.
The folder is made by the job's task and removed when the job ends; nothing here creates it,
so a helper still finishing a unit of an ended job fails instead of leaving files behind.
"""
from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = ["UnitClaims", "worker_name"]


def worker_name() -> str:
    """This process as claims and results name it: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class UnitClaims:
    """The claims and results of the numbered units of one job, in ``folder``."""

    folder: Path
    prefix: str
    suffix: str
    stale_seconds: float = 120.0

    def claim_path(self, index: int) -> Path:
        return self.folder / f"{self.prefix}-{int(index)}.claim"

    def done_path(self, index: int) -> Path:
        return self.folder / f"{self.prefix}-{int(index)}{self.suffix}"

    def claim(self, index: int) -> bool:
        """Claim unit ``index`` for this process: True when it is ours to run.

        A unit that is done is never claimed; a stale claim is taken over (the file then names
        us and is fresh); a missing folder means the job is over.
        """
        if self.done_path(index).is_file():
            return False
        path = self.claim_path(index)
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileNotFoundError:
            return False
        except FileExistsError:
            try:
                age = time.time() - path.stat().st_mtime
            except FileNotFoundError:
                return False
            if age < self.stale_seconds or self.done_path(index).is_file():
                return False
            path.write_text(worker_name())
            return True
        with os.fdopen(fd, "w") as handle:
            handle.write(worker_name())
        return True

    @contextmanager
    def alive(self, index: int) -> Iterator[None]:
        """Touch the unit's claim every few seconds while it runs, so nobody takes it over."""
        path = self.claim_path(index)
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(min(5.0, self.stale_seconds / 4)):
                try:
                    os.utime(path)
                except OSError:
                    return

        thread = threading.Thread(target=beat, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()

    def done(self, total: int) -> list[int]:
        """Indexes (below ``total``) of the units whose result exists, from one listing of the folder."""
        if not self.folder.is_dir():
            return []
        names = {entry.name for entry in os.scandir(self.folder)}
        return [i for i in range(total) if f"{self.prefix}-{i}{self.suffix}" in names]

    def done_write(self, index: int, write: Callable[[BinaryIO], None]) -> Path:
        """Write unit ``index``'s result with ``write(handle)`` under a temporary name, then
        rename it into place: from then on the unit is done. Returns the result's path."""
        path = self.done_path(index)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
        return path

    def run(self, indexes: Iterable[int], work: Callable[[int], object], *,
            should_stop: Callable[[], bool]) -> int:
        """Run ``work(i)`` for every unit of ``indexes`` nobody else has claimed, in order,
        keeping each claim alive while it runs; ``should_stop()`` is asked before each unit.
        Returns how many units this process ran."""
        ran = 0
        for index in indexes:
            if should_stop():
                break
            if not self.claim(index):
                continue
            with self.alive(index):
                work(index)
            ran += 1
        return ran
