"""Free ports and waiting for a started server to listen, for benchmarks that start their own stack."""
from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str, seconds: float = 60) -> None:
    """Return once `proc` listens on `port`; raise if it exits or `seconds` pass first."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on {port}")


def redis_start(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A private Redis on a free port, its files and log in ``folder``; returns it and its URL.

    Benchmarks that start Celery workers need a broker no other run uses (never the tests'
    or the app's port); the caller terminates the process.
    """
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(folder.resolve())],
                            stdout=(folder / "redis.log").open("wb"), stderr=subprocess.STDOUT)
    wait_port(port, proc, "redis")
    return proc, f"redis://127.0.0.1:{port}/0"
