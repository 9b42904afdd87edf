"""What a retrain learns from, read off a volume: its classes and its training labels.

* labels: the "manual" layer (project class values, 0 unlabeled), with voxels of painted
  cells (the "cells" layer, > 0) counted as the cell class where the manual layer says
  nothing or background, and approved review items (annotations/reviews/trusted.py)
  filling the manual layer's unlabeled voxels: see segmentation.core.training_labels.
* classes: the project's semantic LabelClass rows and their parent links (plus the cell
  class when cells are painted).
"""
from __future__ import annotations

from typing import Any

from annotations.imaging import omezarr
from annotations.layer_names import LayerName
from annotations.layers import layer_get
from annotations.models import LabelClass, LabelLayer, Volume
from annotations.storage import volume_zarr_path
from segmentation.core.training_labels import TrainingLabels, TrustedLabels


def training_classes(volume: Volume, *, with_cells: bool) -> tuple[dict[str, int], dict[str, str | None], str | None]:
    """{name: value}, {name: parent or None} of the project's classes the network learns,
    and the name of the cell (interior) class when it takes part."""
    rows = list(LabelClass.objects.filter(project_id=volume.project_id).select_related("parent"))
    values = {c.name: int(c.value) for c in rows if c.kind == LabelClass.Kind.SEMANTIC}
    cell = next((c for c in rows if c.kind == LabelClass.Kind.INSTANCE), None)
    cell_name = None
    if with_cells and cell is not None and cell.name not in values:
        values[cell.name] = int(cell.value)
        cell_name = cell.name
    parents = {c.name: (c.parent.name if c.parent and c.parent.name in values and c.parent.name != "background"
                        else None)
               for c in rows if c.name in values and c.name != "background"}
    return values, parents, cell_name


def _cells_painted(volume: Volume) -> bool:
    layer = layer_get(volume, LayerName.CELLS)
    return layer is not None and layer.max_value > 0


def training_labels_for(volume: Volume) -> tuple[TrainingLabels, dict[str, int], dict[str, str | None], str | None,
                                                 list[dict[str, Any]]]:
    """The training labels of a volume: manual, painted cells and approved review items.

    Returns (labels, class values, class parents, cell class name or None, trusted record)
    where the record is ``[{"assignment", "layer", "slices", "cells"}]`` for ModelVersion.config.
    """
    from annotations.reviews.trusted import trusted_sources

    dest = volume_zarr_path(volume)
    trusted = trusted_sources(volume)
    with_cells = _cells_painted(volume) or any(t["kind"] == LabelLayer.Kind.INSTANCES and (t["cells"] or t["slices"])
                                               for t in trusted)
    values, parents, cell_name = training_classes(volume, with_cells=with_cells)
    manual = omezarr.open_label_level(dest, LayerName.MANUAL, 0)
    has_cells_layer = layer_get(volume, LayerName.CELLS) is not None
    cells = omezarr.open_label_level(dest, LayerName.CELLS, 0) if cell_name and has_cells_layer else None
    sources = [TrustedLabels(omezarr.open_label_level(dest, t["layer"], 0), kind=t["kind"],
                             slices=frozenset(t["slices"]), cells=frozenset(t["cells"])) for t in trusted]
    labels = TrainingLabels(manual, cells, cell_value=values.get(cell_name or "", 0),
                            background=values.get("background", 0), trusted=sources)
    record = [{"assignment": t["assignment"], "layer": t["layer"], "slices": t["slices"], "cells": t["cells"]}
              for t in trusted]
    return labels, values, parents, cell_name, record
