"""Small things a user sees, in real chromium: pins, the audit trail, the diff key, the
status bar, the results page's empty state and its Run report button."""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from annotations import strokes
from annotations.models import Role
from annotations.reviews.comments import comment_add
from tests.conftest import login
from tests.factories import PASSWORD, make_volume

pytestmark = [pytest.mark.e2e, pytest.mark.services]

CONNECTED = "() => document.querySelector('#status')?.textContent.trim() === 'connected'"


@pytest.fixture
def grey(cast: Any, tmp_path: Path) -> Any:
    return make_volume(cast.project, tmp_path, data=np.full((3, 128, 128), 128, np.uint8), name="grey")


def _page(browser: Any, base: str, user: Any, path: str, size: tuple[int, int] = (1400, 900)) -> Any:
    page = browser.new_context(viewport={"width": size[0], "height": size[1]}).new_page()
    login(page, base, user.username, PASSWORD)
    page.goto(f"{base}{path}")
    return page


def test_two_comment_threads_are_pinned_with_two_numbers(live_app: str, browser: Any, cast: Any, grey: Any) -> None:
    first = comment_add(grey, cast.reviewer, Role.REVIEWER, z=1, y=30, x=30, text="first")
    second = comment_add(grey, cast.reviewer, Role.REVIEWER, z=1, y=90, x=90, text="second")
    page = _page(browser, live_app, cast.annotator, f"/volumes/{grey.pk}/")
    page.wait_for_function(CONNECTED, timeout=20000)
    for comment in (first, second):
        page.locator(f"#viewer-xy .review-marker[data-comment='{comment.pk}']").wait_for(state="visible")
    pins = [page.inner_text(f"#viewer-xy .review-marker[data-comment='{c.pk}']") for c in (first, second)]
    assert pins == ["1", "2"]
    assert page.inner_text(f"[data-thread='{second.pk}'] .comment-number") == "#2"


def test_the_audit_trail_names_the_class_painted(live_app: str, browser: Any, cast: Any, grey: Any) -> None:
    nucleus = cast.project.label_classes.get(name="nucleus")
    strokes.stroke_apply(grey, cast.annotator, Role.ANNOTATOR, {
        "uuid": str(uuid.uuid4()), "layer": "manual", "axis": "z", "index": 1, "points": [[10, 10], [20, 20]],
        "radius": 3, "value": nucleus.value, "mode": "paint"})
    page = _page(browser, live_app, cast.manager, f"/volumes/{grey.pk}/audit/")
    page.wait_for_selector("#audit-table .audit-row[data-action=stroke]")
    detail = page.inner_text("#audit-table .audit-row[data-action=stroke] .detail")
    assert "class nucleus" in detail and "value" not in detail


def test_the_diff_overlay_has_a_colour_key(live_app: str, browser: Any, cast: Any, grey: Any) -> None:
    from annotations.layers import layer_create

    layer_create(grey, "prediction", editable=False)
    page = _page(browser, live_app, cast.reviewer, f"/volumes/{grey.pk}/")
    page.wait_for_function(CONNECTED, timeout=20000)
    assert page.locator("#diff-key").is_hidden()
    page.check("#diff-show")
    key = page.locator("#diff-key")
    key.wait_for(state="visible")
    assert "disagree" in key.inner_text()
    nucleus = cast.project.label_classes.get(name="nucleus")
    swatch = key.locator("li[data-class='nucleus'] .swatch")
    assert swatch.evaluate("e => getComputedStyle(e).backgroundColor") == _rgb(nucleus.color)


def _rgb(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


@pytest.mark.parametrize("size", [(1600, 1000), (1280, 720)])
def test_the_viewer_fills_the_window_down_to_its_status_bar(live_app: str, browser: Any, cast: Any, grey: Any,
                                                            size: tuple[int, int]) -> None:
    page = _page(browser, live_app, cast.viewer, f"/volumes/{grey.pk}/", size)
    page.wait_for_selector(".statusbar")
    bottom = page.evaluate("() => document.querySelector('.statusbar').getBoundingClientRect().bottom")
    assert bottom == size[1]


def test_an_empty_results_page_points_up_at_a_run_report_that_looks_disabled(live_app: str, browser: Any, cast: Any,
                                                                            grey: Any) -> None:
    page = _page(browser, live_app, cast.annotator, f"/volumes/{grey.pk}/results/")
    page.wait_for_selector("#no-report")
    run_panel, note = page.locator("#run-panel").bounding_box(), page.locator("#no-report").bounding_box()
    assert run_panel["y"] < note["y"] and "above" in page.inner_text("#no-report")
    button = page.locator("#run-report")
    assert button.is_disabled()  # no cell layer yet
    colour = button.evaluate("e => getComputedStyle(e).backgroundColor")
    enabled = page.evaluate("""() => { const b = document.createElement('button'); b.className = 'primary';
        document.body.append(b); const c = getComputedStyle(b).backgroundColor; b.remove(); return c; }""")
    assert colour != enabled
    assert button.evaluate("e => getComputedStyle(e).cursor") == "not-allowed"
