"""Management commands a lab admin uses from a shell."""
from __future__ import annotations

from io import StringIO
from pathlib import Path

import numpy as np
import pytest
import tifffile
from django.core.management import CommandError, call_command

from annotations.models import Membership, Project, Role, Volume

pytestmark = pytest.mark.django_db


def test_add_member_creates_project_and_user_and_sets_the_role() -> None:
    call_command("add_member", "PDAC", "alice", "reviewer", "--password", "s3cret-s3cret", stdout=StringIO())
    membership = Membership.objects.get(project__name="PDAC", user__username="alice")
    assert membership.role == Role.REVIEWER and membership.user.check_password("s3cret-s3cret")
    assert Project.objects.get(name="PDAC").label_classes.filter(name="nucleolus", color="#ff2020").exists()


def test_add_member_refuses_an_unknown_role() -> None:
    with pytest.raises(CommandError):
        call_command("add_member", "PDAC", "alice", "emperor", stdout=StringIO(), stderr=StringIO())


def test_import_volume_imports_a_tiff_with_the_given_voxel_size(tmp_path: Path) -> None:
    call_command("add_member", "Bx2", "bob", "manager", stdout=StringIO())
    path = tmp_path / "bx2.tif"
    tifffile.imwrite(path, np.zeros((5, 64, 64), np.uint16), photometric="minisblack")
    call_command("import_volume", str(path), "--project", "Bx2", "--voxel-size-nm", "4", "4", "4",
                 stdout=StringIO(), stderr=StringIO())
    volume = Volume.objects.get(name="bx2")
    assert volume.state == Volume.State.READY and volume.voxel_size_nm == (4.0, 4.0, 4.0)


def test_import_volume_asks_for_a_voxel_size_the_file_does_not_state(tmp_path: Path) -> None:
    call_command("add_member", "Bx3", "carol", "manager", stdout=StringIO())
    path = tmp_path / "bx3.tif"
    tifffile.imwrite(path, np.zeros((2, 16, 16), np.uint8), photometric="minisblack")
    with pytest.raises(CommandError, match="bx3.tif does not state its voxel size; give --voxel-size-nm"):
        call_command("import_volume", str(path), "--project", "Bx3", stdout=StringIO(), stderr=StringIO())
    assert not Volume.objects.exists()
