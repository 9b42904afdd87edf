"""A small phantom volume with its full truth in layers, shared by the reports tests."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

PHANTOM_SHAPE = (16, 96, 96)


@pytest.fixture
def phantom_volume(cast: Any, tmp_path: Path) -> Any:
    """The phantom (seed 7) imported into the cast's project, with layers truth and cells_truth."""
    from segmentation.core.phantom import make_phantom
    from segmentation.reports.services import phantom_truth_write
    from tests.factories import make_volume

    phantom = make_phantom(PHANTOM_SHAPE, seed=7)
    volume: Any = make_volume(cast.project, tmp_path, data=phantom.image, name="phantom",  # a Volume carrying .phantom
                         voxel_size_nm=tuple(phantom.voxel_size_nm))
    phantom_truth_write(volume)
    volume.phantom = phantom
    return volume
