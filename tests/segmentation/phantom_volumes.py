"""A tiny phantom volume imported through the real services, with sparse labels painted."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from annotations.layer_names import LayerName
from annotations.layers import layer_create
from annotations.strokes import layer_write_slices
from segmentation.core.phantom import CLASS_VALUES, Phantom, make_phantom
from tests.factories import make_volume

SHAPE = (12, 96, 96)
LABELED = (2, 6, 9)
KEYS = (0, 6, 11)
# Tiny network and budget: seconds on the shared 2-core machine.
TINY = {"patch": 48, "batch": 4, "base_width": 8, "depth": 3}


@dataclass
class PhantomVolume:
    volume: Any
    phantom: Phantom
    truth: np.ndarray  # project class values, background painted everywhere else


def project_truth(project: Any, labels: np.ndarray) -> np.ndarray:
    values = {c.name: c.value for c in project.label_classes.all()}
    out = np.full(labels.shape, values["background"], np.uint16)
    for name, v in CLASS_VALUES.items():
        out[labels == v] = values[name]
    return out


def phantom_volume(project: Any, tmp_path: Path, *, labeled: tuple[int, ...] = LABELED, cells: bool = False,
                   truth_cells: bool = False, name: str = "phantom") -> PhantomVolume:
    """Import a (12, 96, 96) phantom, paint its truth on `labeled` slices of the manual layer,
    and optionally cell ids on KEYS of the cells layer and all cells in "cells_truth"."""
    ph = make_phantom(SHAPE, seed=3, n_cells=2)
    volume = make_volume(project, tmp_path, data=ph.image, name=name, voxel_size_nm=(4.0, 4.0, 4.0))
    truth = project_truth(project, ph.labels)
    if labeled:
        layer_write_slices(volume, LayerName.MANUAL, {z: truth[z] for z in labeled})
    if cells:
        layer_create(volume, LayerName.CELLS, kind="instances")
        layer_write_slices(volume, LayerName.CELLS, {z: ph.cells[z].astype(np.uint32) for z in KEYS})
    if truth_cells:
        layer_create(volume, "cells_truth", kind="instances", editable=False)
        layer_write_slices(volume, "cells_truth", {z: ph.cells[z].astype(np.uint32) for z in range(SHAPE[0])})
    volume.refresh_from_db()
    return PhantomVolume(volume, ph, truth)
