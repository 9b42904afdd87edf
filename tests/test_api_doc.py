"""docs/API.md lists every websocket message: each type the volume consumer acts on appears under
"What a client sends", and each type the server puts in a message (a dict literal with a "type"
in annotations, emportal or segmentation) under "What the server sends", so a new message
cannot ship undocumented."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "API.md"
PACKAGES = ("annotations", "emportal", "segmentation")
# "type" keys that are no message: JSON Schema and NGFF words, and the channel layer's own handler name.
NOT_MESSAGES = {"array", "boolean", "integer", "number", "object", "string", "null", "scale", "translation",
                "space", "forward"}


def _section_types(heading: str) -> set[str]:
    """The backquoted names in the first column of the table under `heading`."""
    text = DOC.read_text()
    start = text.index(f"\n{heading}\n")
    end = text.find("\n#", start + 1)
    body = text[start:end if end != -1 else None]
    return set(re.findall(r"^\| `([a-z_]+)` \|", body, flags=re.MULTILINE))


def _strings(node: ast.AST) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return _strings(node.body) | _strings(node.orelse)
    return set()


def _sent_types() -> set[str]:
    found: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Dict):
                    for key, value in zip(node.keys, node.values):
                        if isinstance(key, ast.Constant) and key.value == "type" and value is not None:
                            found |= _strings(value)
    found |= set(re.findall(r'\{"type": "([a-z_]+)"', (ROOT / "annotations" / "socket_groups.py").read_text()))
    return found - NOT_MESSAGES


def _received_types() -> set[str]:
    """The names the volume consumer compares the message type with (kind == "x", kind in (...))."""
    source = (ROOT / "annotations" / "consumers.py").read_text()
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare) and isinstance(node.left, ast.Name) and node.left.id == "kind":
            for comparator in node.comparators:
                found |= _strings(comparator)
                if isinstance(comparator, ast.Tuple):
                    for element in comparator.elts:
                        found |= _strings(element)
    return found


def test_every_message_a_client_may_send_is_documented() -> None:
    received = _received_types()
    assert {"stroke", "undo", "presence"} <= received  # the scan finds the consumer's cases
    assert received == _section_types("### What a client sends")


def test_every_message_the_server_sends_is_documented() -> None:
    sent = _sent_types()
    assert {"hello", "ack", "error", "job", "batch"} <= sent  # the scan finds the senders
    documented = _section_types("### What the server sends")
    assert sent - documented == set(), "undocumented: add them to docs/API.md"
    assert documented - sent == set(), "documented but never sent: remove them from docs/API.md"
