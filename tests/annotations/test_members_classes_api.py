"""People and classes from the browser: a manager adds members by name or e-mail, sets and
removes roles, and edits the project's label classes; lower roles get 403, outsiders 404."""
from __future__ import annotations

import typing  # typing.cast: `cast` here is the fixture of roles
from pathlib import Path
from typing import Any

import pytest
import zarr
from django.test import Client

from annotations.layer_names import LayerName
from annotations.models import LabelClass, Membership, Role
from annotations.storage import volume_zarr_path
from tests.factories import UserFactory, make_volume

pytestmark = pytest.mark.django_db


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _send(user: Any, method: str, url: str, body: Any = None) -> Any:
    return getattr(_client(user), method)(url, body or {}, content_type="application/json")


def _members(cast: Any) -> str:
    return f"/api/projects/{cast.project.pk}/members/"


def _classes(cast: Any) -> str:
    return f"/api/projects/{cast.project.pk}/classes/"


def test_a_manager_adds_a_user_by_e_mail_and_the_listing_shows_them(cast: Any) -> None:
    UserFactory(username="petra", email="Petra@lab.example")
    response = _send(cast.manager, "post", _members(cast), {"username": "petra@lab.example", "role": "annotator"})
    assert response.status_code == 201, response.content
    assert response.json() == {"username": "petra", "role": "annotator"}
    assert Membership.objects.get(project=cast.project, user__username="petra").role == Role.ANNOTATOR
    listing = _client(cast.viewer).get(_members(cast)).json()
    assert {"username": "petra", "role": "annotator"} in listing


def test_an_unknown_login_is_refused_by_name(cast: Any) -> None:
    response = _send(cast.manager, "post", _members(cast), {"username": "nobody@lab.example", "role": "viewer"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_user"


def test_a_manager_sets_a_role_and_removes_a_member(cast: Any) -> None:
    url = f"{_members(cast)}viewer/"
    response = _send(cast.manager, "put", url, {"role": "reviewer"})
    assert response.status_code == 200 and response.json()["role"] == "reviewer"
    assert Membership.objects.get(project=cast.project, user=cast.viewer).role == Role.REVIEWER
    assert _send(cast.manager, "delete", url).status_code == 204
    assert not Membership.objects.filter(project=cast.project, user=cast.viewer).exists()
    assert _send(cast.manager, "delete", url).status_code == 404


def test_the_last_manager_can_be_neither_demoted_nor_removed(cast: Any) -> None:
    url = f"{_members(cast)}manager/"
    demote = _send(cast.manager, "put", url, {"role": "viewer"})
    assert demote.status_code == 409 and demote.json()["error"]["code"] == "last_manager"
    assert _send(cast.manager, "delete", url).json()["error"]["code"] == "last_manager"
    assert Membership.objects.get(project=cast.project, user=cast.manager).role == Role.MANAGER
    _send(cast.manager, "put", f"{_members(cast)}reviewer/", {"role": "manager"})
    assert _send(cast.manager, "delete", url).status_code == 204  # another manager now exists


@pytest.mark.parametrize("role", ["viewer", "annotator", "reviewer"])
def test_lower_roles_may_not_change_people_or_classes(cast: Any, role: str) -> None:
    user = cast.by_role(role)
    nucleus = LabelClass.objects.get(project=cast.project, name="nucleus")
    attempts = [("post", _members(cast), {"username": "viewer", "role": "manager"}),
                ("put", f"{_members(cast)}viewer/", {"role": "manager"}),
                ("delete", f"{_members(cast)}viewer/", None),
                ("post", _classes(cast), {"name": "golgi", "color": "#00ff00"}),
                ("patch", f"{_classes(cast)}{nucleus.pk}/", {"color": "#000000"})]
    for method, url, body in attempts:
        response = _send(user, method, url, body)
        assert response.status_code == 403, (method, url, response.status_code)
    assert _client(user).get(_classes(cast)).status_code == 200
    assert LabelClass.objects.get(pk=nucleus.pk).color == "#ffd400"
    assert Membership.objects.get(project=cast.project, user=cast.viewer).role == Role.VIEWER


def test_outsiders_learn_nothing_about_people_or_classes(cast: Any) -> None:
    nucleus = LabelClass.objects.get(project=cast.project, name="nucleus")
    for method, url, body in [("get", _members(cast), None), ("get", _classes(cast), None),
                              ("put", f"{_members(cast)}viewer/", {"role": "manager"}),
                              ("delete", f"{_members(cast)}viewer/", None),
                              ("patch", f"{_classes(cast)}{nucleus.pk}/", {"name": "x"})]:
        assert _send(cast.outsider, method, url, body).status_code == 404, (method, url)


def test_a_manager_adds_a_class_with_the_next_free_value_under_a_parent(cast: Any) -> None:
    response = _send(cast.manager, "post", _classes(cast), {"name": "golgi", "color": "#00FF00", "parent": "cell"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["value"] == 8 and body["color"] == "#00ff00" and body["parent"] == "cell" and body["kind"] == "semantic"
    assert LabelClass.objects.get(project=cast.project, name="golgi").parent.name == "cell"
    assert "golgi" in [c["name"] for c in _client(cast.viewer).get(_classes(cast)).json()]


@pytest.mark.parametrize("body, code, status", [
    ({"name": "Nucleus", "color": "#00ff00"}, "class_name_taken", 409),
    ({"name": "golgi", "color": "green"}, "invalid", 400),
    ({"name": "golgi", "color": "#00ff00", "parent": "nowhere"}, "unknown_class", 400),
    ({"name": "  ", "color": "#00ff00"}, "invalid", 400),
    ({"color": "#00ff00"}, "invalid", 400),
])
def test_bad_classes_are_refused_with_a_code(cast: Any, body: dict[str, Any], code: str, status: int) -> None:
    response = _send(cast.manager, "post", _classes(cast), body)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    assert LabelClass.objects.filter(project=cast.project).count() == 7


def test_a_manager_renames_recolours_and_reparents_a_class_and_its_value_stays(cast: Any) -> None:
    mito = LabelClass.objects.get(project=cast.project, name="mitochondrion")
    url = f"{_classes(cast)}{mito.pk}/"
    response = _send(cast.manager, "patch", url, {"name": "mito", "color": "#123456", "parent": "nucleus"})
    assert response.status_code == 200, response.content
    mito.refresh_from_db()
    assert (mito.name, mito.color, mito.parent.name, mito.value) == ("mito", "#123456", "nucleus", 4)
    assert _send(cast.manager, "patch", url, {"parent": None}).json()["parent"] is None


def test_a_renamed_or_recoloured_class_reaches_the_layers_metadata_other_viewers_read(
        cast: Any, settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    volume = make_volume(cast.project, tmp_path)
    mito = LabelClass.objects.get(project=cast.project, name="mitochondrion")
    _send(cast.manager, "patch", f"{_classes(cast)}{mito.pk}/", {"name": "mito", "color": "#123456"})
    added = _send(cast.manager, "post", _classes(cast), {"name": "vesicle", "color": "#00ff00"}).json()
    group = zarr.open_group(str(volume_zarr_path(volume) / "labels" / LayerName.MANUAL), mode="r")
    meta = typing.cast(dict[str, Any], group.attrs["image-label"])  # an NGFF image-label object
    names = {p["label-value"]: p["name"] for p in meta["properties"]}
    colours = {c["label-value"]: c["rgba"] for c in meta["colors"]}
    assert names[mito.value] == "mito" and colours[mito.value][:3] == [0x12, 0x34, 0x56]
    assert names[added["value"]] == "vesicle" and colours[added["value"]][:3] == [0, 255, 0]


def test_a_class_cannot_be_moved_inside_its_own_child(cast: Any) -> None:
    nucleus = LabelClass.objects.get(project=cast.project, name="nucleus")  # nucleolus sits inside it
    response = _send(cast.manager, "patch", f"{_classes(cast)}{nucleus.pk}/", {"parent": "nucleolus"})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "class_cycle")
    nucleus.refresh_from_db()
    assert nucleus.parent.name == "cell"


def test_a_class_of_another_project_is_not_found(cast: Any) -> None:
    other = LabelClass.objects.exclude(project=cast.project).first()
    response = _send(cast.manager, "patch", f"{_classes(cast)}{other.pk}/", {"name": "x"})
    assert response.status_code == 404
