from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annotations.imaging.validation import Limits, check_declared_size, resolve_inside, safe_filename


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "data"
    (r / "lab").mkdir(parents=True)
    (r / "lab" / "vol.tif").write_bytes(b"x")
    (tmp_path / "secret.txt").write_text("no")
    return r


def test_it_resolves_relative_and_absolute_paths_inside_the_root(root: Path) -> None:
    assert resolve_inside(root, "lab/vol.tif") == (root / "lab" / "vol.tif").resolve()
    assert resolve_inside(root, str(root / "lab" / "vol.tif")) == (root / "lab" / "vol.tif").resolve()


@pytest.mark.parametrize("user_path", ["../secret.txt", "lab/../../secret.txt", "/etc/passwd", "../nothing"])
def test_it_refuses_traversal_out_of_the_root(root: Path, user_path: str) -> None:
    with pytest.raises(ValueError, match="outside the data root"):
        resolve_inside(root, user_path)


def test_it_refuses_symlinks_that_lead_out_of_the_root(root: Path) -> None:
    os.symlink(root.parent / "secret.txt", root / "lab" / "link.tif")
    os.symlink(root.parent, root / "up")
    with pytest.raises(ValueError, match="outside"):
        resolve_inside(root, "lab/link.tif")
    with pytest.raises(ValueError, match="outside"):
        resolve_inside(root, "up/secret.txt")


def test_it_accepts_symlinks_that_stay_inside_the_root(root: Path) -> None:
    os.symlink(root / "lab" / "vol.tif", root / "alias.tif")
    assert resolve_inside(root, "alias.tif") == (root / "lab" / "vol.tif").resolve()


def test_it_treats_a_tilde_as_a_name_inside_the_root_not_the_home_folder(root: Path) -> None:
    (root / "~").mkdir()
    (root / "~" / "v.tif").write_bytes(b"x")
    assert resolve_inside(root, "~/v.tif") == (root / "~" / "v.tif").resolve()


@pytest.mark.parametrize("user_path", ["", "   ", "lab/\x00vol.tif", "lab/missing.tif"])
def test_it_refuses_empty_nul_and_missing_paths(root: Path, user_path: str) -> None:
    with pytest.raises(ValueError):
        resolve_inside(root, user_path)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_it_never_returns_a_path_outside_the_root_for_any_input(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    base = tmp_path_factory.getbasetemp() / "fuzzroot"
    (base / "a" / "b").mkdir(parents=True, exist_ok=True)
    try:
        resolved = resolve_inside(base, text)
    except ValueError:
        return
    assert resolved.is_relative_to(base.resolve())


@pytest.mark.parametrize(
    ("name", "expected"),
    [("../../etc/vol 1.tif", "vol 1.tif"), ("C:\\data\\x.h5", "x.h5"), ("a<b>.mrc", "a_b_.mrc")],
)
def test_it_strips_directories_and_odd_characters_from_upload_names(name: str, expected: str) -> None:
    assert safe_filename(name) == expected


@pytest.mark.parametrize("name", ["", "..", "/", "../.."])
def test_it_refuses_upload_names_with_nothing_usable(name: str) -> None:
    with pytest.raises(ValueError):
        safe_filename(name)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_it_makes_every_upload_name_a_single_harmless_component(name: str) -> None:
    try:
        out = safe_filename(name)
    except ValueError:
        return
    assert "/" not in out and "\\" not in out and out not in (".", "..") and "\x00" not in out
    assert 0 < len(out) <= 200


def test_it_refuses_truncated_and_overcompressed_declarations() -> None:
    limits = Limits(max_compression_ratio=10)
    with pytest.raises(ValueError, match="truncated"):
        check_declared_size((2, 10, 10), __import__("numpy").dtype("uint16"), 399, limits, compressed=False, what="f")
    with pytest.raises(ValueError, match="decompression bomb"):
        check_declared_size((2, 10, 10), __import__("numpy").dtype("uint8"), 19, limits, compressed=True, what="f")
    check_declared_size((2, 10, 10), __import__("numpy").dtype("uint8"), 20, limits, compressed=True, what="f")


def test_it_refuses_nonsensical_limits() -> None:
    with pytest.raises(ValueError, match="max_voxels"):
        Limits(max_voxels=0)
    with pytest.raises(ValueError, match="ratio"):
        Limits(max_compression_ratio=0.5)
