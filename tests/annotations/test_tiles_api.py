"""Tiles through the Django view show exactly the stored voxels, in every plane."""
from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone
from PIL import Image

from annotations.layer_names import LayerName
from annotations.models import Membership
from annotations.strokes import layer_write_slices
from tests.factories import PASSWORD, gradient_volume, make_volume

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer_client(cast: Any) -> Client:
    client = Client()
    client.force_login(cast.viewer)
    return client


@pytest.fixture
def volume(cast: Any, tmp_path: Any) -> Any:
    return make_volume(cast.project, tmp_path)


def _pixels(response: Any) -> np.ndarray:
    assert response.status_code == 200, response.content[:200]
    return np.asarray(Image.open(io.BytesIO(response.content)))


@pytest.mark.parametrize("axis,index,expect", [
    ("z", 2, lambda v: v[2, 0:256, 256:512]),
    ("y", 100, lambda v: v[:, 100, 256:512]),
    ("x", 300, lambda v: v[:, 0:256, 300]),
])
def test_a_full_resolution_tile_equals_the_volume_plane(viewer_client: Client, volume: Any, axis: str, index: int,
                                                         expect: Any) -> None:
    tx = 1 if axis != "x" else 0
    response = viewer_client.get(f"/api/volumes/{volume.pk}/tiles/{axis}/{index}/0/0/{tx}.png")
    assert response["Content-Type"] == "image/png"
    np.testing.assert_array_equal(_pixels(response), expect(gradient_volume()))


def test_edge_tiles_are_cropped_not_padded(viewer_client: Client, volume: Any) -> None:
    pixels = _pixels(viewer_client.get(f"/api/volumes/{volume.pk}/tiles/z/0/0/1/2.png"))
    assert pixels.shape == (300 - 256, 520 - 512)


def test_a_coarser_level_is_half_the_size(viewer_client: Client, cast: Any, tmp_path: Any) -> None:
    volume = make_volume(cast.project, tmp_path, data=np.zeros((2, 1100, 700), np.uint8), name="big")
    assert [lv["shape"] for lv in volume.levels][:2] == [[2, 1100, 700], [2, 550, 350]]
    pixels = _pixels(viewer_client.get(f"/api/volumes/{volume.pk}/tiles/z/1/1/0/1.png"))
    assert pixels.shape == (256, 350 - 256)


def test_a_window_stretches_contrast(viewer_client: Client, volume: Any) -> None:
    plain = _pixels(viewer_client.get(f"/api/volumes/{volume.pk}/tiles/z/0/0/0/0.png")).astype(int)
    stretched = _pixels(viewer_client.get(f"/api/volumes/{volume.pk}/tiles/z/0/0/0/0.png?window=0,125")).astype(int)
    low = plain < 120
    assert np.all(stretched[low] >= plain[low]) and stretched[low].mean() > 1.8 * plain[low].mean()


def test_outside_the_volume_is_404(viewer_client: Client, volume: Any) -> None:
    for url in ("tiles/z/4/0/0/0.png", "tiles/z/0/0/9/0.png", "tiles/z/0/7/0/0.png", "layers/nope/tiles/z/0/0/0/0.png"):
        assert viewer_client.get(f"/api/volumes/{volume.pk}/{url}").status_code == 404, url


def test_tiles_are_cacheable_and_revalidate_with_etag(viewer_client: Client, volume: Any) -> None:
    url = f"/api/volumes/{volume.pk}/tiles/z/0/0/0/0.png"
    first = viewer_client.get(url)
    assert "max-age" in first["Cache-Control"]
    again = viewer_client.get(url, HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304


def test_label_tiles_paint_class_colours_and_change_with_the_layer(viewer_client: Client, cast: Any,
                                                                   volume: Any) -> None:
    url = f"/api/volumes/{volume.pk}/layers/{LayerName.MANUAL}/tiles/z/1/0/0/0.png"
    before = viewer_client.get(url)
    assert _pixels(before)[..., 3].max() == 0  # nothing painted: transparent
    nucleus = cast.project.label_classes.get(name="nucleus")
    plane = np.zeros((300, 520), np.uint16)
    plane[10:20, 30:40] = nucleus.value
    layer_write_slices(volume, LayerName.MANUAL, {1: plane})
    after = viewer_client.get(url, HTTP_IF_NONE_MATCH=before["ETag"])
    pixels = _pixels(after)
    assert tuple(pixels[15, 35]) == nucleus.rgba
    assert pixels[50, 50, 3] == 0


class TestTheTileSessionCheckAnswersAsDjangoDoes:
    """Tiles read the session without the ORM; every way a session stops being valid still ends in 404."""

    URL = "/api/volumes/{}/tiles/z/0/0/0/0.png"

    def _client(self, cast: Any) -> Client:
        client = Client()
        assert client.login(username=cast.viewer.username, password=PASSWORD)
        return client

    def test_a_logged_in_member_gets_the_tile_in_two_queries_with_a_vary_cookie_header(
            self, cast: Any, volume: Any, django_assert_num_queries: Any) -> None:
        client = self._client(cast)
        with django_assert_num_queries(2):  # the session row, then volume + membership + user in one join
            response = client.get(self.URL.format(volume.pk))
        assert response.status_code == 200
        assert "Cookie" in response["Vary"]

    def test_after_logout_the_same_cookie_gets_404(self, cast: Any, volume: Any) -> None:
        client = self._client(cast)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
        client.post("/accounts/logout/")
        stale = Client()
        stale.cookies[settings.SESSION_COOKIE_NAME] = cookie
        assert stale.get(self.URL.format(volume.pk)).status_code == 404

    def test_a_password_change_ends_the_session_for_tiles(self, cast: Any, volume: Any) -> None:
        client = self._client(cast)
        cast.viewer.set_password("another-secret-123")
        cast.viewer.save()
        assert client.get(self.URL.format(volume.pk)).status_code == 404

    def test_an_inactive_user_gets_404(self, cast: Any, volume: Any) -> None:
        client = self._client(cast)
        type(cast.viewer).objects.filter(pk=cast.viewer.pk).update(is_active=False)
        assert client.get(self.URL.format(volume.pk)).status_code == 404

    def test_an_expired_session_gets_404(self, cast: Any, volume: Any) -> None:
        client = self._client(cast)
        Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
        assert client.get(self.URL.format(volume.pk)).status_code == 404

    def test_a_tampered_session_row_gets_404(self, cast: Any, volume: Any) -> None:
        client = self._client(cast)
        Session.objects.update(session_data="forged:data")
        assert client.get(self.URL.format(volume.pk)).status_code == 404

    def test_a_member_removed_from_the_project_gets_404_at_once(self, cast: Any, volume: Any) -> None:
        client = self._client(cast)
        Membership.objects.filter(user=cast.viewer).delete()
        assert client.get(self.URL.format(volume.pk)).status_code == 404
