"""In real headless chromium: log in, open a volume, see its first slice drawn."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import login
from tests.factories import PASSWORD, make_volume

pytestmark = [pytest.mark.e2e, pytest.mark.services]


def test_a_member_logs_in_and_sees_the_slice_drawn(live_app: str, browser: Any, cast: Any, tmp_path: Path) -> None:
    z, y, x = np.indices((3, 200, 300))
    data = np.where((y // 25 + x // 25) % 2 == 0, 30, 220).astype(np.uint8)  # a checkerboard
    volume = make_volume(cast.project, tmp_path, data=data, name="checkers")
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, live_app, cast.viewer.username, PASSWORD)
    assert "Bx1" in page.content()
    page.click("text=Bx1")
    page.click(f"text={volume.name}")
    page.wait_for_selector("#viewer-xy canvas")
    page.wait_for_function(
        """() => {
            const c = document.querySelector('#viewer-xy canvas');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let dark = 0, bright = 0;
            for (let i = 0; i < d.length; i += 4) { if (d[i] < 60) dark++; else if (d[i] > 190) bright++; }
            return dark > 1000 && bright > 1000;
        }""", timeout=20000)
    assert page.locator("#slice-label").inner_text().replace(" ", "").startswith("z")
    assert errors == []


def test_a_wrong_password_is_refused_on_the_login_page(live_app: str, browser: Any, cast: Any) -> None:
    page = browser.new_page()
    login(page, live_app, cast.viewer.username, "not the password")
    assert page.url.endswith("/accounts/login/")
    assert page.locator("[role=alert]").inner_text().startswith("That user name")
