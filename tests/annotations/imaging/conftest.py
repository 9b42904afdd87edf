from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def volume() -> np.ndarray:
    """A small ZYX uint8 volume whose every voxel differs from its neighbours."""
    rng = np.random.default_rng(1234)
    return rng.integers(0, 256, size=(5, 37, 43), dtype=np.uint8)


@pytest.fixture(autouse=True)
def _media_root() -> None:
    """Override tests/conftest.py's Django media-root fixture: these tests are Django-free
    (they run with ``-p no:django``) and write only under ``tmp_path``."""
