"""The account page in real chromium: a token is created and shown once, works on the API,
and stops working when revoked."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import requests

from emportal.tokens.services import token_create
from tests.conftest import login
from tests.factories import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.services]
ROOT = Path(__file__).resolve().parents[2]


def test_a_user_creates_a_token_sees_it_once_and_revokes_it(live_app: str, browser: Any, cast: Any,
                                                             tmp_path: Path) -> None:
    token_create(cast.annotator, "cluster job runner")
    page = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
    login(page, live_app, cast.annotator.username, PASSWORD)
    page.click("header a.who")  # the user name in the header leads to the account page
    page.wait_for_url(f"{live_app}/account/")
    page.fill("#create-token input[name=name]", "analysis notebook")
    page.click("#create-token button[type=submit]")
    page.wait_for_selector("#new-token")
    key = page.inner_text("#new-token-key").strip()
    assert key.startswith("emp_") and "analysis notebook" in page.inner_text("#new-token h3")
    names = page.locator("#tokens .token-name").all_inner_texts()
    assert names == ["analysis notebook", "cluster job runner"]
    # EMPORTAL_SCREENSHOTS=1 refreshes the picture in the docs; other runs keep the tree clean.
    shots = ROOT / "docs" / "screenshots" if os.environ.get("EMPORTAL_SCREENSHOTS") == "1" else tmp_path
    page.screenshot(path=str(shots / "account-tokens.png"))

    api = f"{live_app}/api/projects/"
    assert requests.get(api, headers={"Authorization": f"Token {key}"}, timeout=10).status_code == 200
    page.goto(f"{live_app}/account/")
    assert key not in page.content()  # shown once

    page.locator("#tokens tr", has_text="analysis notebook").locator("button", has_text="Revoke").click()
    page.wait_for_load_state("networkidle")
    assert page.locator("#tokens .token-name").all_inner_texts() == ["cluster job runner"]
    assert requests.get(api, headers={"Authorization": f"Token {key}"}, timeout=10).status_code == 401
