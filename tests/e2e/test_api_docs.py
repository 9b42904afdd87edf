"""The API reference is served by the app itself (Swagger UI from a pip package), offline."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.conftest import login
from tests.factories import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.services]

ROOT = Path(__file__).resolve().parents[2]


def test_the_api_docs_open_from_the_top_bar_and_load_nothing_from_outside(live_app: str, browser: Any,
                                                                          cast: Any, tmp_path: Path) -> None:
    page = browser.new_page()
    hosts: set[str] = set()
    page.on("request", lambda request: hosts.add(urlparse(request.url).netloc))
    login(page, live_app, cast.viewer.username, PASSWORD)
    page.click("header .api-docs")
    page.wait_for_selector(".opblock", timeout=30_000)
    operations = page.locator(".opblock").count()
    assert operations >= 50, f"Swagger UI shows {operations} operations"
    assert hosts <= {urlparse(live_app).netloc}, f"requests left the server: {hosts}"
    assert "EM Portal API" in page.inner_text(".information-container")
    # EMPORTAL_SCREENSHOTS=1 refreshes the picture in the docs; other runs keep the tree clean.
    shots = ROOT / "docs" / "screenshots" if os.environ.get("EMPORTAL_SCREENSHOTS") == "1" else tmp_path
    page.set_viewport_size({"width": 1600, "height": 1000})
    page.screenshot(path=str(shots / "api-docs.png"))
