"""Shared fixtures: the cast of users, real services (Redis, Celery worker, Daphne) and a browser."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Playwright's sync API keeps an event loop running in the test thread; Django would
# then refuse the (synchronous, test-only) database calls that set up browser tests.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _media_root(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every web-layer test writes volumes under a media root of its own.

    Skipped when pytest-django is not loaded (`-p no:django`), so the pure science
    tests under tests/segmentation/core run without Django at all.
    """
    if request.config.pluginmanager.has_plugin("django"):
        request.getfixturevalue("settings").MEDIA_ROOT = tmp_path_factory.mktemp("media")


@pytest.fixture(autouse=True)
def _fresh_channel_layer(request: pytest.FixtureRequest) -> Iterator[None]:
    """A channel layer per test: channels_redis binds its receive lock to the first event loop that
    receives, and each async test (async_to_sync) runs its own loop; under Daphne there is one."""
    if not request.config.pluginmanager.has_plugin("django"):
        yield
        return
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@dataclass
class Cast:
    """A project and one user per role, plus an outsider who belongs to another project."""

    project: Any
    manager: Any
    reviewer: Any
    annotator: Any
    viewer: Any
    outsider: Any

    def by_role(self, name: str) -> Any:
        return getattr(self, name)


@pytest.fixture
def cast(db: Any) -> Cast:
    from annotations.models import Role
    from tests.factories import MembershipFactory, ProjectFactory, UserFactory

    project = ProjectFactory(name="Bx1")
    members = {role.label: MembershipFactory(project=project, role=role,
                                             user=UserFactory(username=role.label)).user
               for role in Role}
    outsider = MembershipFactory(role=Role.MANAGER, user=UserFactory(username="outsider")).user
    return Cast(project=project, outsider=outsider, **members)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _database_url() -> str:
    from django.db import connection

    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


def _service_env(settings: Any) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"DATABASE_URL": _database_url(), "MEDIA_ROOT": str(settings.MEDIA_ROOT),
                "DJANGO_SETTINGS_MODULE": "emportal.settings", "PYTHONUNBUFFERED": "1"})
    return env


def _require_redis() -> str:
    url = os.environ.get("REDIS_URL", "")
    import redis

    try:
        redis.Redis.from_url(url).ping()
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"Redis at {url!r} is not reachable ({exc}); run the tests with `make test`")
    return url


@contextmanager
def running_celery_worker(settings: Any, tmp_path: Path, *, processes: int = 1, name: str = "test",
                          env: dict[str, str] | None = None, wait_s: float = 60) -> Iterator[subprocess.Popen[bytes]]:
    """A real Celery worker (`processes` processes on both queues) on the test database, until
    the block ends; the queues are purged after it so no message reaches a later test."""
    _require_redis()
    log = (tmp_path / "worker.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "emportal", "worker", "-Q", "default,gpu", "-c", str(processes),
         "--without-gossip", "--without-mingle", "-n", f"{name}-{os.getpid()}@%h", "--loglevel=INFO"],
        cwd=ROOT, env={**_service_env(settings), **(env or {})}, stdout=log, stderr=subprocess.STDOUT)
    from emportal.celery import app

    deadline = time.time() + wait_s
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"worker exited: {(tmp_path / 'worker.log').read_text()[-3000:]}")
        if app.control.inspect(timeout=0.5).ping():
            break
    else:
        pytest.fail(f"worker did not answer within {wait_s:.0f} s")
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        app.control.purge()


@pytest.fixture
def celery_worker(transactional_db: Any, settings: Any, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A real Celery worker process on both queues, on the test database."""
    with running_celery_worker(settings, tmp_path) as proc:
        yield proc


@pytest.fixture
def live_app(transactional_db: Any, settings: Any, tmp_path: Path) -> Iterator[str]:
    """Daphne serving the app (HTTP and websockets) on a free port, on the test database."""
    _require_redis()
    port = _free_port()
    log = (tmp_path / "daphne.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                             "emportal.asgi:application"],
                            cwd=ROOT, env=_service_env(settings), stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"daphne exited: {(tmp_path / 'daphne.log').read_text()[-3000:]}")
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture
def browser() -> Iterator[Any]:
    """Debian's headless chromium driven by Playwright (it cannot download its own browsers here)."""
    from playwright.sync_api import sync_playwright

    if not Path("/usr/bin/chromium").exists():
        pytest.fail("/usr/bin/chromium is missing; `make test` installs it")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


def wait_until(condition: Any, seconds: float = 15) -> None:
    """Poll `condition` until it holds: the server applies socket messages asynchronously."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the server did not get there in time"
        time.sleep(0.1)


def screenshot_dir() -> Path:
    """docs/screenshots when EMPORTAL_SCREENSHOTS=1 (to refresh the pictures in the docs), else a
    temporary folder: an ordinary test run leaves the tree clean."""
    if os.environ.get("EMPORTAL_SCREENSHOTS") == "1":
        return ROOT / "docs" / "screenshots"
    return Path(tempfile.mkdtemp(prefix="emportal-screenshots-"))


def login(page: Any, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.press("input[name=password]", "Enter")
    page.wait_for_load_state("networkidle")
