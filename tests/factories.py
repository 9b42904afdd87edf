"""Factories for the web layer's rows. Volumes with real zarr data come from `make_volume`."""
from __future__ import annotations

from pathlib import Path

import factory
import numpy as np
import tifffile
from django.contrib.auth import get_user_model

from annotations.models import Membership, Project, Role, Volume
from annotations.services import label_classes_install_defaults, volume_import_local
from emportal.jobs.models import Job

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):  # noqa: N805 - factory_boy hook
        if create:
            obj.save()


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Project {n}")

    @factory.post_generation
    def classes(obj, create, extracted, **kwargs):  # noqa: N805
        if create:
            label_classes_install_defaults(obj)


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    project = factory.SubFactory(ProjectFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.VIEWER


def gradient_volume(shape: tuple[int, int, int] = (4, 300, 520)) -> np.ndarray:
    """A uint8 volume whose voxel values tell where they are: easy to check in tiles."""
    z, y, x = np.indices(shape)
    return ((x + 2 * y + 37 * z) % 251).astype(np.uint8)


def make_volume(project: Project, tmp_path: Path, *, data: np.ndarray | None = None,
                name: str = "vol", voxel_size_nm: tuple[float, float, float] = (8.0, 4.0, 4.0)) -> Volume:
    """Import `data` (default: a gradient) through the real import service, in this process."""
    data = gradient_volume() if data is None else data
    path = tmp_path / f"{name}.tif"
    tifffile.imwrite(path, data, photometric="minisblack")
    job = volume_import_local(project, path, name=name, voxel_size_nm=voxel_size_nm)
    assert job.state == job.State.SUCCEEDED, job.message
    return volume_of(job)


def volume_of(job: Job) -> Volume:
    """The volume a job was created for (an import's new volume)."""
    assert job.volume_id is not None, f"job {job.pk} ({job.kind}) has no volume"
    return Volume.objects.get(pk=job.volume_id)
