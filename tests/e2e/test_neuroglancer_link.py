"""Open in Neuroglancer, in real chromium: the button opens the Neuroglancer app on the view
shown, and a page of that app's origin reads the store through the signed link (CORS and a
byte range, as Neuroglancer does). The app itself is a stand-in page: no network here."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np
import pytest
from django.conf import settings

from tests.conftest import login
from tests.factories import PASSWORD, make_volume

pytestmark = [pytest.mark.e2e, pytest.mark.services]

APP = "https://neuroglancer-demo.appspot.com"
CONNECTED = "() => document.querySelector('#status')?.textContent.trim() === 'connected'"


def test_the_button_opens_neuroglancer_on_this_view_and_the_app_reads_the_store(
        live_app: str, browser: Any, cast: Any, tmp_path: Path) -> None:
    volume = make_volume(cast.project, tmp_path, data=np.arange(3 * 128 * 128, dtype=np.uint32).reshape(3, 128, 128)
                         .astype(np.uint8), name="crop")
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    # Chrome asks the user before a public page may reach a loopback or private address (Local
    # Network Access); the user says yes here, as they would once for a lab server.
    context.grant_permissions(["local-network-access"], origin=APP)
    context.route(f"{APP}/**", lambda route: route.fulfill(status=200, content_type="text/html",
                                                          body="<html><body>Neuroglancer stand-in</body></html>"))
    page = context.new_page()
    login(page, live_app, cast.viewer.username, PASSWORD)
    page.goto(f"{live_app}/volumes/{volume.pk}/#z=2&y=100&x=40&hide=manual")
    page.wait_for_function(CONNECTED, timeout=20000)
    button = page.locator("#open-neuroglancer")
    assert button.inner_text() == "Open in Neuroglancer"
    with context.expect_page() as opened:
        button.click()
    app = opened.value
    app.wait_for_load_state()
    assert app.url.startswith(f"{APP}/#!")
    state = json.loads(unquote(app.url.split("#!", 1)[1]))
    assert state["position"] == [40, 100, 2]
    image, *labels = state["layers"]
    assert image["type"] == "image" and image["source"].startswith(f"zarr2://{live_app}/stores/")
    assert [(layer["name"], layer["visible"]) for layer in labels] == [("manual", False)]  # hidden in the viewer
    assert labels[0]["source"] == image["source"] + "labels/manual/"
    nucleus = cast.project.label_classes.get(name="nucleus")
    assert labels[0]["segmentColors"][str(nucleus.value)] == nucleus.color
    store = image["source"].removeprefix("zarr2://")
    # From the app's origin, as Neuroglancer would: no cookie, a byte range, CORS.
    got = app.evaluate("""async (url) => {
        const meta = await fetch(url + ".zattrs");
        const part = await fetch(url + "0/0/0/0", {headers: {Range: "bytes=0-15"}});
        return {meta: await meta.json(), status: part.status, bytes: Array.from(new Uint8Array(await part.arrayBuffer()))};
    }""", store)
    assert got["meta"]["multiscales"][0]["name"] == "crop"
    chunk = (Path(settings.MEDIA_ROOT) / volume.zarr_path / "0/0/0/0").read_bytes()
    assert got["status"] == 206 and bytes(got["bytes"]) == chunk[:16]
    page.screenshot(path=str(tmp_path / "viewer-neuroglancer-button.png"))
