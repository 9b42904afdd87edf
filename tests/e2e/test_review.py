"""Team review in real chromium: a manager assigns, the reviewer sends a slice back with a
comment pinned at a voxel, the annotator finds the spot from the comment, paints a fix and
marks it fixed, the reviewer approves, and the audit trail shows it all in order."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from annotations.models import Stroke
from annotations.reviews.models import Comment, Notification, ReviewAssignment
from tests.conftest import login, wait_until
from tests.factories import PASSWORD, make_volume

pytestmark = [pytest.mark.e2e, pytest.mark.services]

CONNECTED = "() => document.querySelector('#status')?.textContent.trim() === 'connected'"


@pytest.fixture
def grey_volume(cast: Any, tmp_path: Path) -> Any:
    return make_volume(cast.project, tmp_path, data=np.full((4, 128, 128), 128, np.uint8), name="grey")


def _page(browser: Any, base: str, user: Any) -> Any:
    page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    login(page, base, user.username, PASSWORD)
    return page


def _open_viewer(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("#viewer-xy canvas")
    page.wait_for_function(CONNECTED, timeout=20000)


def _focus(page: Any) -> list[int]:
    return page.evaluate("() => [...window.emViewer.ctx.focus.value]")


def _pixel_at(page: Any, x: float, y: float) -> list[int]:
    """RGB of the XY canvas at page coordinates (x, y)."""
    return page.evaluate("""([x, y]) => {
      const c = document.querySelector('#viewer-xy canvas');
      const r = c.getBoundingClientRect();
      const s = c.width / r.width;
      const d = c.getContext('2d').getImageData(Math.round((x - r.left) * s), Math.round((y - r.top) * s), 1, 1).data;
      return [d[0], d[1], d[2]];
    }""", [x, y])


def test_assign_request_changes_fix_approve_and_audit(live_app: str, browser: Any, cast: Any,
                                                      grey_volume: Any) -> None:
    # ---- the manager assigns slices 0..3 of the manual layer through the dashboard form
    manager = _page(browser, live_app, cast.manager)
    manager.goto(f"{live_app}/projects/{cast.project.pk}/")
    manager.click("#reviews-link")
    manager.wait_for_selector("#assignment-form")
    manager.select_option("#af-layer", "manual")
    manager.select_option("#af-reviewer", "reviewer")
    manager.select_option("#af-fixer", "annotator")
    manager.fill("#af-note", "check the nucleus edges")
    manager.click("#af-submit")
    manager.wait_for_function("() => /created/.test(document.querySelector('#af-status').textContent)")
    assignment = ReviewAssignment.objects.get(volume=grey_volume)
    assert (assignment.z0, assignment.z1, assignment.state) == (0, 4, "open")
    assert assignment.reviewer == cast.reviewer and assignment.fixer == cast.annotator
    row = manager.locator(f"[data-assignment='{assignment.pk}']")
    row.wait_for()
    assert "0/4 slices approved" in row.inner_text() and "open" in row.inner_text()

    # ---- the reviewer opens it in reviewer mode, starts, steps to slice 1 and sends it back
    reviewer = _page(browser, live_app, cast.reviewer)
    _open_viewer(reviewer, f"{live_app}/volumes/{grey_volume.pk}/?review={assignment.pk}")
    reviewer.wait_for_function("() => document.querySelector('#review-progress')?.textContent === '0/4 slices approved'")
    reviewer.click("[data-action=start]")
    reviewer.wait_for_function("() => document.querySelector('#review-state')?.textContent === 'in review'")
    reviewer.keyboard.press("j")
    reviewer.wait_for_function("() => document.querySelector('#review-item')?.textContent.startsWith('z 1')")
    assert _focus(reviewer)[0] == 1
    box = reviewer.locator("#viewer-xy canvas").bounding_box()
    spot = (box["x"] + box["width"] / 2 + 40, box["y"] + box["height"] / 2 - 30)
    reviewer.mouse.move(*spot)
    reviewer.wait_for_function("() => document.querySelector('#cursor-info').textContent.startsWith('z 1')")
    hovered = [int(v) for v in re.findall(r"[zyx] (\d+)", reviewer.inner_text("#cursor-info"))[:3]]
    reviewer.keyboard.press("c")
    reviewer.wait_for_selector("#review-comment", state="visible")
    reviewer.keyboard.type("The nucleus edge is missing here")
    reviewer.keyboard.press("Enter")
    reviewer.wait_for_function("() => document.querySelector('#review-item')?.textContent.includes('changes requested')")
    comment = Comment.objects.get(volume=grey_volume, assignment=assignment)
    assert [comment.z, comment.y, comment.x] == hovered and comment.author == cast.reviewer
    marker = reviewer.locator(f"#viewer-xy .review-marker[data-comment='{comment.pk}']")
    marker.wait_for(state="visible")
    mbox = marker.bounding_box()
    assert abs(mbox["x"] + mbox["width"] / 2 - spot[0]) < 8 and abs(mbox["y"] + mbox["height"] / 2 - spot[1]) < 8
    reviewer.click("[data-action=request_changes]")  # send the assignment back, with a summary
    reviewer.wait_for_selector("#review-comment", state="visible")
    assert "z 1" in reviewer.input_value("#review-comment")
    reviewer.keyboard.press("Enter")
    reviewer.wait_for_function("() => document.querySelector('#review-state')?.textContent === 'changes requested'")
    assignment.refresh_from_db()
    assert assignment.state == "changes_requested"
    assert not reviewer.locator("[data-action=approve]").count()  # nothing to approve while changes are asked

    # ---- the annotator is notified, sees the comment, opens the spot from its link, paints, marks fixed
    annotator = _page(browser, live_app, cast.annotator)
    annotator.goto(f"{live_app}/notifications/")
    annotator.wait_for_function("() => Number(document.querySelector('#notif-count')?.textContent) >= 2")
    notice = annotator.locator(".notification.kind-changes_requested", has_text="nucleus edge").first
    notice.wait_for()
    notice.locator("a").click()  # the comment's link: the viewer at the pinned voxel, with the review open
    pinned = rf"#z={comment.z}&y={comment.y}&x={comment.x}(&|$)"
    annotator.wait_for_url(re.compile(rf"/volumes/{grey_volume.pk}/\?review={assignment.pk}{pinned}"))
    annotator.wait_for_load_state()
    annotator.wait_for_selector("#viewer-xy canvas")
    annotator.wait_for_function(CONNECTED, timeout=20000)
    annotator.wait_for_function("() => document.querySelector('#review-state')?.textContent === 'changes requested'")
    annotator.wait_for_function("() => document.querySelector('#review-item')?.textContent.startsWith('z 1')")
    assert _focus(annotator) == [comment.z, comment.y, comment.x]
    assert annotator.locator("[data-action=mark_fixed]").is_visible()  # the fixer can answer right there
    spot_link = f"/volumes/{grey_volume.pk}/?review={assignment.pk}#z={comment.z}&y={comment.y}&x={comment.x}"
    assert Notification.objects.get(user=cast.annotator, link=spot_link).read
    thread = annotator.locator(f"[data-thread='{comment.pk}']")
    thread.wait_for()
    assert "The nucleus edge is missing here" in thread.inner_text()
    pin = annotator.locator(f"#viewer-xy .review-marker[data-comment='{comment.pk}']")
    pin.wait_for(state="visible")
    pbox = pin.bounding_box()
    px, py = pbox["x"] + pbox["width"] / 2, pbox["y"] + pbox["height"] / 2
    annotator.click(f"[data-class-value='{cast.project.label_classes.get(name='nucleus').value}']")
    annotator.click("#tool-brush")
    annotator.mouse.move(px - 40, py + 20)
    annotator.mouse.down()
    for dx in range(-40, 41, 8):
        annotator.mouse.move(px + dx, py + 20)
    annotator.mouse.up()
    wait_until(lambda: Stroke.objects.filter(layer__volume=grey_volume, user=cast.annotator).exists())
    stroke = Stroke.objects.get(layer__volume=grey_volume, user=cast.annotator)
    assert stroke.axis == "z" and stroke.index == comment.z
    r, g, b = _pixel_at(annotator, px + 13, py + 21)  # beside the crosshair lines through the spot
    assert r - b > 50 and g - b > 40, "the nucleus paint is not on the canvas"
    thread = annotator.locator(f"[data-thread='{comment.pk}']")
    thread.locator(".comment-reply-btn").click()
    annotator.keyboard.type("Extended the nucleus to its envelope")
    annotator.keyboard.press("Enter")
    thread.locator(".comment-reply", has_text="Extended the nucleus").wait_for()
    assert comment.replies.get().author == cast.annotator
    annotator.locator("#viewer-xy canvas").focus()
    annotator.keyboard.press("f")  # this slice is fixed ...
    annotator.wait_for_function("() => document.querySelector('#review-item')?.textContent.includes('fixed')")
    annotator.click("[data-action=mark_fixed]")  # ... and so is the assignment
    annotator.wait_for_function("() => document.querySelector('#review-state')?.textContent === 'fixed'")
    assignment.refresh_from_db()
    assert assignment.state == "fixed"
    assert assignment.items.get(key=1).state == "fixed"

    # ---- the reviewer reloads and approves; every slice is approved
    reviewer.reload()
    reviewer.wait_for_function("() => document.querySelector('#review-state')?.textContent === 'fixed'")
    reviewer.click("[data-action=approve]")
    reviewer.wait_for_function("() => document.querySelector('#review-state')?.textContent === 'approved'")
    assert reviewer.inner_text("#review-progress") == "4/4 slices approved"
    assignment.refresh_from_db()
    assert assignment.state == "approved" and set(assignment.items.values_list("state", flat=True)) == {"approved"}

    reviewer.locator(f"[data-thread='{comment.pk}'] .comment-resolve").click()
    reviewer.wait_for_function(f"() => !document.querySelector(\"[data-thread='{comment.pk}']\")")
    assert not reviewer.locator(f".review-marker[data-comment='{comment.pk}']").count()
    comment.refresh_from_db()
    assert comment.resolved and comment.resolved_by == cast.reviewer

    # ---- the audit trail lists all of it, in order
    manager.goto(f"{live_app}/volumes/{grey_volume.pk}/audit/")
    manager.wait_for_selector("#audit-table .audit-row")
    actions = manager.eval_on_selector_all("#audit-table .audit-row", "rows => rows.map(r => r.dataset.action)")
    expected = ["review_created", "review_start", "item_request_changes", "review_request_changes", "stroke",
                "item_fixed", "review_mark_fixed", "review_approve", "comment_resolved"]
    positions = [actions.index(a) for a in expected]
    assert positions == sorted(positions), actions
    who = manager.eval_on_selector_all("#audit-table .audit-row", "rows => rows.map(r => r.children[1].textContent)")
    assert who[positions[0]] == "manager" and who[positions[4]] == "annotator" and who[positions[7]] == "reviewer"
    csv = manager.evaluate(f"() => fetch('/api/volumes/{grey_volume.pk}/audit/?format=csv').then(r => r.text())")
    assert csv.splitlines()[0] == "at,actor,action,layer,detail" and "review_approve" in csv


def test_the_diff_overlay_shows_where_two_layers_disagree(live_app: str, browser: Any, cast: Any,
                                                          grey_volume: Any) -> None:
    from annotations.layers import layer_create
    from annotations.strokes import layer_write_slices

    values = {c.name: c.value for c in cast.project.label_classes.all()}
    manual = np.full((128, 128), values["background"], np.uint16)
    manual[:, :64] = values["nucleus"]  # the left half is nucleus, the right half background
    predicted = np.full((128, 128), values["nucleus"], np.uint16)  # the model calls it all nucleus
    layer_write_slices(grey_volume, "manual", {2: manual})
    layer_create(grey_volume, "prediction", editable=False)
    layer_write_slices(grey_volume, "prediction", {2: predicted})
    both = (manual == values["nucleus"]).sum(), (predicted == values["nucleus"]).sum()
    nucleus_dice = 2 * ((manual == values["nucleus"]) & (predicted == values["nucleus"])).sum() / sum(both)

    page = _page(browser, live_app, cast.viewer)  # reading a diff needs no more than the viewer role
    _open_viewer(page, f"{live_app}/volumes/{grey_volume.pk}/#z=2&y=64&x=64")
    for layer in ("manual", "prediction"):
        page.locator(f"#layer-{layer} .layer-visible").uncheck()
    page.select_option("#diff-a", "manual")
    page.select_option("#diff-b", "prediction")
    page.check("#diff-show")
    row = page.locator("#dice-table tr[data-class='nucleus']")
    row.wait_for()
    assert row.locator("td").nth(1).inner_text() == f"{nucleus_dice:.2f}"
    assert f"{int((manual != predicted).sum()):,}" in page.inner_text("#diff-summary")

    box = page.locator("#viewer-xy canvas").bounding_box()
    left = (box["x"] + box["width"] / 2 - 60, box["y"] + box["height"] / 2 - 40)
    right = (box["x"] + box["width"] / 2 + 60, box["y"] + box["height"] / 2 - 40)
    page.wait_for_function(f"""() => {{
      const c = document.querySelector('#viewer-xy canvas'), r = c.getBoundingClientRect(), s = c.width / r.width;
      const d = c.getContext('2d').getImageData(Math.round(({right[0]} - r.left) * s), Math.round(({right[1]} - r.top) * s), 1, 1).data;
      return d[0] - d[2] > 50 && d[1] - d[2] > 40;
    }}""", timeout=15000)  # disagreement drawn in the colour of B's class (nucleus: yellow)
    r, g, b = _pixel_at(page, *left)
    assert max(r, g, b) - min(r, g, b) < 12, "where the layers agree the image shows through, grey"
    page.uncheck("#diff-show")
    page.wait_for_function(f"""() => {{
      const c = document.querySelector('#viewer-xy canvas'), r = c.getBoundingClientRect(), s = c.width / r.width;
      const d = c.getContext('2d').getImageData(Math.round(({right[0]} - r.left) * s), Math.round(({right[1]} - r.top) * s), 1, 1).data;
      return Math.abs(d[0] - d[2]) < 12;
    }}""", timeout=15000)
