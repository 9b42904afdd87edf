"""Web security that Django gives only when configured: login brake, CSRF, deploy checks."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    cache.clear()


def _login(client: Client, username: str, password: str) -> Any:
    return client.post("/accounts/login/", {"username": username, "password": password})


def test_password_guessing_is_paused_after_five_failures(cast: Any) -> None:
    client = Client()
    for _ in range(5):
        assert _login(client, "viewer", "wrong").status_code == 200
    locked = _login(client, "viewer", PASSWORD)  # even the right password waits
    assert locked.status_code == 429 and b"Too many failed attempts" in locked.content
    assert _login(Client(), "annotator", PASSWORD).status_code == 302  # others are not affected


def test_a_successful_login_clears_the_count(cast: Any) -> None:
    client = Client()
    for _ in range(4):
        _login(client, "viewer", "wrong")
    assert _login(client, "viewer", PASSWORD).status_code == 302
    for _ in range(4):
        assert _login(Client(), "viewer", "wrong").status_code == 200


def test_unsafe_requests_without_a_csrf_token_are_refused(cast: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.manager)
    response = client.post(f"/api/projects/{cast.project.pk}/members/", {"username": "viewer", "role": "manager"},
                           content_type="application/json")
    assert response.status_code == 403 and "CSRF" in response.json()["error"]["message"]
    assert Client(enforce_csrf_checks=True).post("/accounts/login/", {"username": "x", "password": "y"}).status_code == 403


def test_uploaded_and_stored_files_are_never_served_directly(cast: Any) -> None:
    client = Client()
    client.force_login(cast.manager)
    assert client.get("/media/volumes/1.ome.zarr/zarr.json").status_code == 404


def test_production_settings_pass_the_deploy_check(tmp_path: Path) -> None:
    env = {**os.environ, "EMPORTAL_PRODUCTION": "1", "DEBUG": "0", "ALLOWED_HOSTS": "em.example.org",
           "SECRET_KEY": "k" * 20 + os.urandom(24).hex(), "EMPORTAL_VAR_DIR": str(tmp_path),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    for test_only in ("EMPORTAL_FAST_PASSWORD_HASHER", "DJANGO_ALLOW_ASYNC_UNSAFE"):
        env.pop(test_only, None)
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_session_and_csrf_cookies_are_secure_in_production(tmp_path: Path) -> None:
    env = {**os.environ, "EMPORTAL_PRODUCTION": "1", "EMPORTAL_VAR_DIR": str(tmp_path)}
    code = ("from django.conf import settings as s; "
            "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, s.DEBUG)")
    out = subprocess.run([sys.executable, "-c", f"import django; django.setup(); {code}"], cwd=ROOT,
                         env={**env, "DJANGO_SETTINGS_MODULE": "emportal.settings"}, capture_output=True, text=True)
    assert out.stdout.split() == ["True", "True", "True", "False"], out.stderr
