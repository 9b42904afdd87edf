"""The demo project: a phantom volume with known truth and, where ../shared/data is
present, a real labeled EM crop, each with a few sparsely painted slices to train from.

Idempotent: running it again changes nothing that exists.
"""
from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tifffile
from django.conf import settings

from annotations.layer_names import LayerName
from annotations.layers import layer_create
from annotations.models import Project, Volume
from annotations.services import project_member_add, volume_import_local
from annotations.strokes import layer_write_slices
from segmentation.core.phantom import CLASS_VALUES, make_phantom
from segmentation.reports.services import phantom_truth_write, report_compute

log = logging.getLogger(__name__)

DEMO_PROJECT = "Demo"
PHANTOM_NAME = "Phantom: tumour cells (synthetic)"
REAL_NAME = "SBEM mitochondria (CDeep3M sample)"
PHANTOM_SHAPE = (48, 320, 320)
PHANTOM_SEED = 7


def _phantom_to_project_values(project: Project, phantom_labels: np.ndarray) -> np.ndarray:
    """Map the phantom's innermost-class labels (0 none, 1 nucleus, ...) to the project's
    class values, with unlabeled phantom voxels painted as explicit background."""
    values = {c.name: c.value for c in project.label_classes.all()}
    out = np.full(phantom_labels.shape, values["background"], np.uint16)
    for name, phantom_value in CLASS_VALUES.items():
        out[phantom_labels == phantom_value] = values[name]
    return out


def _import_array(project: Project, name: str, data: np.ndarray, voxel_size_nm: tuple[float, float, float],
                  note: Callable[[str], None]) -> Volume:
    with tempfile.TemporaryDirectory(dir=settings.VAR_DIR) as tmp:
        path = Path(tmp) / "volume.tif"
        tifffile.imwrite(path, data, photometric="minisblack")
        job = volume_import_local(project, path, name=name, voxel_size_nm=voxel_size_nm)
    if job.state != job.State.SUCCEEDED or job.volume_id is None:
        raise RuntimeError(f"demo import of {name!r} failed: {job.message}")
    note(f"imported {name}")
    return Volume.objects.get(pk=job.volume_id)


def demo_load(password: str, *, note: Callable[[str], None] = log.info) -> Project:
    """Create (or complete) the demo project and the demo user as its manager."""
    membership = project_member_add(DEMO_PROJECT, "demo", "manager", password=password)
    project = membership.project
    if not project.description:
        project.description = "A synthetic FIB-SEM phantom with known truth and a real SBEM crop."
        project.save(update_fields=["description"])
    ready = set(project.volumes.filter(state=Volume.State.READY).values_list("name", flat=True))

    phantom = None
    if PHANTOM_NAME not in ready:
        phantom = make_phantom(PHANTOM_SHAPE, seed=PHANTOM_SEED)
        volume = _import_array(project, PHANTOM_NAME, phantom.image, phantom.voxel_size_nm, note)
        truth = _phantom_to_project_values(project, phantom.labels)
        key = [PHANTOM_SHAPE[0] // 4, 3 * PHANTOM_SHAPE[0] // 4]
        layer_write_slices(volume, LayerName.MANUAL, {z: truth[z] for z in key})
        layer_create(volume, LayerName.CELLS)
        layer_write_slices(volume, LayerName.CELLS, {z: phantom.cells[z] for z in (0, 20, 40)})
    volume = project.volumes.get(name=PHANTOM_NAME, state=Volume.State.READY)
    if not volume.feature_reports.exists():
        # The full truth as read-only layers, and a report on it, so the results pages have
        # something true to show before anyone has trained a model.
        phantom_truth_write(volume, seed=PHANTOM_SEED, phantom=phantom)
        report_compute(volume, labels_layer="truth", cells_layer="cells_truth")
        note("computed the phantom's feature report")

    crop = Path(settings.SHARED_DATA) / "cdeep3m_sbem_mito"
    if REAL_NAME not in ready:
        if (crop / "image.tif").exists():
            image = tifffile.imread(crop / "image.tif")
            mito = tifffile.imread(crop / "mito.tif")
            volume = _import_array(project, REAL_NAME, image, (40.0, 5.9, 5.9), note)
            values = {c.name: c.value for c in project.label_classes.all()}
            painted = {z: np.where(mito[z] > 0, values["mitochondrion"], values["background"]).astype(np.uint16)
                       for z in (0, 10)}
            layer_write_slices(volume, LayerName.MANUAL, painted)
        else:
            note(f"note: {crop} is not here, so the demo holds the phantom only")
    return project
