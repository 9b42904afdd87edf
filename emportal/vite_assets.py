"""The frontend's content-hashed bundles in Django templates.

`npm run build` names every bundle after a hash of its content (``volume-BkMAD9l8.js``),
so after a deploy a browser can never run yesterday's JavaScript from its cache under
today's name, and writes ``frontend/dist/.vite/manifest.json``, which maps each page entry
to its files. The two tags here read that manifest::

    {% load vite_assets %}
    {% vite_styles "volume" %}   <link rel="stylesheet" href="/static/volume-BSIiTzLP.css">
    {% vite_script "volume" %}   <script type="module" src="/static/volume-BkMAD9l8.js"></script>

Entry names are the keys of ``build.rollupOptions.input`` in ``frontend/vite.config.ts``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from django import template
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.templatetags.static import static
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

register = template.Library()


class _Chunk(TypedDict, total=False):
    """One record of Vite's manifest (only the fields read here)."""

    file: str
    name: str
    isEntry: bool
    css: list[str]
    imports: list[str]


@dataclass(frozen=True)
class Entry:
    """A page's script and every stylesheet it needs (its own and its imports'), as static paths."""

    script: str
    styles: tuple[str, ...]


def manifest_path() -> Path:
    return Path(settings.BASE_DIR) / "frontend" / "dist" / ".vite" / "manifest.json"


def parse_manifest(raw: dict[str, _Chunk]) -> dict[str, Entry]:
    """The entries of a Vite manifest by name, each with the CSS of the chunks it imports."""

    def styles(key: str, seen: set[str]) -> list[str]:
        chunk = raw[key]
        found = list(chunk.get("css", []))
        for imported in chunk.get("imports", []):
            if imported not in seen:
                seen.add(imported)
                found += styles(imported, seen)
        return found

    return {chunk["name"]: Entry(chunk["file"], tuple(dict.fromkeys(styles(key, {key}))))
            for key, chunk in raw.items() if chunk.get("isEntry")}


# Read again whenever the build rewrites the manifest (a dev rebuild under a running server).
_cache: dict[Path, tuple[int, dict[str, Entry]]] = {}


def entries(path: Path | None = None) -> dict[str, Entry]:
    path = path or manifest_path()
    try:
        stamp = path.stat().st_mtime_ns
    except FileNotFoundError:
        raise ImproperlyConfigured(
            f"{path} is missing: build the frontend (scripts/setup.sh, or `npm run build` in frontend/)") from None
    cached = _cache.get(path)
    if cached is None or cached[0] != stamp:
        cached = (stamp, parse_manifest(json.loads(path.read_text())))
        _cache[path] = cached
    return cached[1]


def entry(name: str) -> Entry:
    found = entries()
    if name not in found:
        raise ImproperlyConfigured(f"no frontend entry {name!r} in {manifest_path()} (entries: {sorted(found)})")
    return found[name]


@register.simple_tag
def vite_script(name: str) -> SafeString:
    return format_html('<script type="module" src="{}"></script>', static(entry(name).script))


@register.simple_tag
def vite_styles(name: str) -> SafeString:
    return format_html_join("", '<link rel="stylesheet" href="{}">', ((static(path),) for path in entry(name).styles))
