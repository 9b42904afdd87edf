"""Every relative link in README.md and docs/ points at a file that exists, and every anchor at a
heading of that file (as GitHub makes heading anchors), so moving or renaming a page or a heading
cannot silently break the docs a newcomer reads."""
from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])

_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_CODE_SPAN = re.compile(r"`[^`]*`")
_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def _prose_lines(text: str, *, drop_code_spans: bool = True) -> list[str]:
    """The lines outside fenced and indented code blocks (inline code spans removed unless asked)."""
    lines, fenced, previous_blank = [], False, True
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        indented_code = line.startswith("    ") and previous_blank
        previous_blank = not line.strip() or (indented_code and previous_blank)
        if fenced or indented_code:
            continue
        lines.append(_CODE_SPAN.sub("", line) if drop_code_spans else line)
    return lines


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: rendered text lowercased, punctuation and symbols dropped
    (letters, marks, digits, '_' and '-' kept), spaces turned into '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").replace("*", "").lower()
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LM" or unicodedata.category(c) == "Nd")
    return kept.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of a markdown page, with GitHub's -1, -2 suffixes for repeats."""
    seen: dict[str, int] = {}
    for line in _prose_lines(page.read_text(encoding="utf-8"), drop_code_spans=False):
        m = _HEADING.match(line)
        if not m:
            continue
        slug = _slug(m.group(2))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        if n:
            seen.setdefault(f"{slug}-{n}", 1)
    return set(seen)


def links(page: Path) -> list[str]:
    """The relative link targets of a page (web and mail links left out)."""
    found = []
    for line in _prose_lines(page.read_text(encoding="utf-8")):
        for target in _LINK.findall(line):
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
                found.append(target)
    return found


def test_the_slug_follows_githubs_rules() -> None:
    assert _slug("Session 10 (CPU): HeLa's errors — and `load.py`") == "session-10-cpu-helas-errors--and-loadpy"
    assert _slug("cdeep3m_sbem_mito (SBEM, 20 x 1024²)") == "cdeep3m_sbem_mito-sbem-20-x-1024"


def test_it_checks_links_in_prose_and_not_in_code(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# A `page`\n\nSee [this](other.md#part) and [the web](https://example.org).\n\n"
                    "    [indented](code.md)\n\n```\n[fenced](code.md)\n```\nand `[a span](code.md)`.\n",
                    encoding="utf-8")
    assert links(page) == ["other.md#part"]
    assert anchors(page) == {"a-page"}  # code in a heading stays in its anchor


def test_the_pages_are_found() -> None:
    assert ROOT / "docs" / "ACCURACY.md" in PAGES and ROOT / "README.md" in PAGES


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for target in links(page):
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor.lower() not in anchors(dest):
            broken.append(f"{target}: no heading with that anchor in {dest.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)
