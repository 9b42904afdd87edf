"""Pages load the frontend's content-hashed bundles named in Vite's manifest, never fixed names."""
from __future__ import annotations

import json
import os
import re
import typing  # typing.cast: `cast` here is the fixture of roles
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import StreamingHttpResponse
from django.test import Client

from emportal.vite_assets import entries, parse_manifest

DIST = Path(settings.BASE_DIR) / "frontend" / "dist"


def test_the_notifications_page_references_hashed_bundles_that_exist_and_are_served(cast: Any) -> None:
    client = Client()
    client.force_login(cast.viewer)
    html = client.get("/notifications/").content.decode()

    scripts = re.findall(r'<script type="module" src="/static/([^"]+)"', html)
    styles = re.findall(r'<link rel="stylesheet" href="/static/(reviews[^"]+)"', html)
    assert len(scripts) == 1 and len(styles) == 1, html
    for name in scripts + styles:
        # Vite's [name]-[hash]: a new build of changed code is a new URL.
        assert re.fullmatch(r"reviews-[\w-]{8}\.(js|css)", name), name
        assert (DIST / name).is_file()
        served = client.get(f"/static/{name}")
        assert served.status_code == 200
        assert b"".join(typing.cast(StreamingHttpResponse, served).streaming_content if served.streaming else [served.content])


def test_an_entry_lists_its_own_css_and_that_of_the_chunks_it_imports_once() -> None:
    raw: dict[str, Any] = {
        "src/volume.ts": {"file": "volume-aaaa1111.js", "name": "volume", "isEntry": True,
                          "css": ["volume-bbbb2222.css"], "imports": ["_panel.js", "_dom.js"]},
        "_panel.js": {"file": "chunks/panel-cccc3333.js", "name": "panel", "css": ["panel-dddd4444.css"],
                      "imports": ["_dom.js"]},
        "_dom.js": {"file": "chunks/dom-eeee5555.js", "name": "dom", "css": ["panel-dddd4444.css"]},
    }
    found = parse_manifest(raw)

    assert list(found) == ["volume"]
    assert found["volume"].script == "volume-aaaa1111.js"
    assert found["volume"].styles == ("volume-bbbb2222.css", "panel-dddd4444.css")


def test_a_rebuilt_manifest_is_read_again_and_a_missing_one_is_named(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"src/jobs.ts": {"file": "jobs-11111111.js", "name": "jobs", "isEntry": True}}))
    assert entries(manifest)["jobs"].script == "jobs-11111111.js"

    manifest.write_text(json.dumps({"src/jobs.ts": {"file": "jobs-22222222.js", "name": "jobs", "isEntry": True}}))
    os.utime(manifest, ns=(manifest.stat().st_atime_ns, manifest.stat().st_mtime_ns + 1_000_000))
    assert entries(manifest)["jobs"].script == "jobs-22222222.js"

    with pytest.raises(ImproperlyConfigured, match="build the frontend"):
        entries(tmp_path / "absent.json")
