"""manage.py load_demo: the demo project a fresh install opens on (segmentation/demo.py)."""
from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from annotations.models import Project, Role, Volume
from segmentation.demo import PHANTOM_NAME, REAL_NAME

pytestmark = pytest.mark.django_db


def test_load_demo_without_shared_data_loads_the_phantom_alone_and_says_so(settings: Any, tmp_path: Path) -> None:
    settings.SHARED_DATA = tmp_path / "absent"
    settings.VAR_DIR = tmp_path
    out = StringIO()
    call_command("load_demo", stdout=out)
    call_command("load_demo", stdout=out)  # idempotent
    demo = Project.objects.get(name="Demo")
    assert list(demo.volumes.values_list("name", flat=True)) == [PHANTOM_NAME]
    assert "phantom only" in out.getvalue()
    assert demo.memberships.get(user__username="demo").role == Role.MANAGER
    assert (tmp_path / "demo_password").read_text() in out.getvalue()
    phantom = demo.volumes.get()
    assert {layer.name for layer in phantom.layers.all()} == {"manual", "cells", "truth", "cells_truth"}
    assert phantom.feature_reports.get().n_cells > 1


@pytest.mark.skipif(not (Path(__file__).resolve().parents[3] / "shared" / "data" / "cdeep3m_sbem_mito").exists(),
                    reason="../shared/data is not here")
def test_load_demo_with_shared_data_adds_the_real_crop_with_painted_slices(settings: Any, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path
    call_command("load_demo", stdout=StringIO())
    real = Volume.objects.get(name=REAL_NAME)
    assert real.shape == (20, 1024, 1024) and real.voxel_size_nm == (40.0, 5.9, 5.9)
    assert real.layers.get(name="manual").strokes.count() == 2  # two painted slices, logged as strokes
