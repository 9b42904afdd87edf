"""People and classes from the browser: a manager adds a member by e-mail, changes a role,
removes someone, adds a class and recolours one, all on the project page without a shell."""
from __future__ import annotations

from typing import Any

import pytest

from annotations.models import LabelClass, Membership, Role
from tests.conftest import login, screenshot_dir
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.e2e]

SHOTS = screenshot_dir()


def _page(browser: Any, base: str, user: Any, project: Any, size: tuple[int, int] = (1600, 1000)) -> Any:
    page = browser.new_context(viewport={"width": size[0], "height": size[1]}).new_page()
    login(page, base, user.username, PASSWORD)
    page.goto(f"{base}/projects/{project.pk}/")
    return page


def test_a_manager_manages_people_and_classes_on_the_project_page(live_app: str, browser: Any, cast: Any) -> None:
    UserFactory(username="petra", email="petra@lab.example")
    page = _page(browser, live_app, cast.manager, cast.project)
    page.once("dialog", lambda d: d.accept())  # "Take viewer out of this project?"

    page.fill("#member-form input[name=username]", "petra@lab.example")
    page.select_option("#member-form select[name=role]", "reviewer")
    page.click("#member-form button[type=submit]")
    page.wait_for_selector("#members tr[data-username=petra]")
    assert "added petra as reviewer" in page.locator("#member-form .status").inner_text()
    assert Membership.objects.get(project=cast.project, user__username="petra").role == Role.REVIEWER

    page.select_option("#members tr[data-username=annotator] select.member-role", "reviewer")
    page.wait_for_function("() => document.querySelector('#members tr[data-username=annotator] .status').textContent === 'saved'")
    assert Membership.objects.get(project=cast.project, user=cast.annotator).role == Role.REVIEWER

    page.click("#members tr[data-username=viewer] .member-remove")
    page.wait_for_selector("#members tr[data-username=viewer]", state="detached")
    assert not Membership.objects.filter(project=cast.project, user=cast.viewer).exists()

    # The last manager cannot demote themself: the refusal is shown and the select goes back.
    page.select_option("#members tr[data-username=manager] select.member-role", "viewer")
    page.wait_for_function("() => document.querySelector('#members tr[data-username=manager] .status').textContent.includes('manager')")
    assert page.locator("#members tr[data-username=manager] select.member-role").input_value() == "manager"

    page.fill("#class-form input[name=name]", "golgi")
    page.select_option("#class-form select[name=parent]", "cell")
    page.click("#class-form button[type=submit]")
    page.wait_for_selector("#classes tr[data-class=golgi]")
    golgi = LabelClass.objects.get(project=cast.project, name="golgi")
    assert (golgi.value, golgi.parent.name, golgi.color) == (8, "cell", "#7fd13b")

    row = "#classes tr[data-class=mitochondrion]"
    page.fill(f"{row} input[name=name]", "mito")
    page.locator(f"{row} input[name=color]").evaluate("(el) => { el.value = '#12ab34'; }")
    page.click(f"{row} .class-save")
    page.wait_for_function("() => document.querySelector('#classes tr[data-class=mito] .status')?.textContent === 'saved'")
    mito = LabelClass.objects.get(project=cast.project, value=4)
    assert (mito.name, mito.color) == ("mito", "#12ab34")
    page.locator("#people-section").scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "project-people-classes-1600.png"), full_page=True)
    small = _page(browser, live_app, cast.manager, cast.project, (1280, 720))
    small.locator("#people-section").scroll_into_view_if_needed()
    small.screenshot(path=str(SHOTS / "project-people-classes-1280.png"))


def test_a_reviewer_sees_people_and_classes_but_no_controls(live_app: str, browser: Any, cast: Any) -> None:
    page = _page(browser, live_app, cast.reviewer, cast.project)
    assert page.locator("#members tr[data-username=manager]").inner_text().split("\t")[:2] == ["manager", "manager"]
    assert page.locator("#members select, #member-form, #class-form, #classes input").count() == 0
    assert "mitochondrion" in page.locator("#classes").inner_text()
