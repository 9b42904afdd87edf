"""Per-cell features of segmented FIB-SEM volumes: organelle volumes, shape, fenestration, texture.

The public entry point is :func:`cell_features`, one table row per cell; :data:`COLUMNS`
(and :func:`describe_columns` for other class sets) gives every column's unit and meaning,
and :func:`write_report` writes CSV, XLSX (with a column sheet) or Parquet.

Sub-modules: ``morphology`` (counts, volumes, surface, solidity, elongation),
``fenestration`` (nucleolar envelope and fenestrations), ``texture`` (intensity
statistics and 3D GLCM), ``table`` (the per-cell driver), ``pyramid`` (each measure at the coarsest pyramid level
that keeps it within 1 % of level 0), ``report`` (files).
"""
from __future__ import annotations

from segmentation.core.features.fenestration import DEFAULT_CLOSING_RADIUS_NM, fenestration_mask, fenestrations
from segmentation.core.features.morphology import elongations, object_stats, surface_shape
from segmentation.core.features.pyramid import (
    MEASURE_MAX_VOXEL_NM,
    PyramidTable,
    ReadLevel,
    cell_features_pyramid,
    level_plan,
)
from segmentation.core.features.report import write_report
from segmentation.core.features.table import (
    COLUMNS,
    DEFAULT_CLASSES,
    cell_bounding_boxes,
    cell_features,
    class_masks,
    describe_columns,
    intensity_range_of,
)

__all__ = [
    "COLUMNS",
    "DEFAULT_CLASSES",
    "DEFAULT_CLOSING_RADIUS_NM",
    "MEASURE_MAX_VOXEL_NM",
    "PyramidTable",
    "ReadLevel",
    "cell_bounding_boxes",
    "cell_features",
    "cell_features_pyramid",
    "class_masks",
    "describe_columns",
    "elongations",
    "fenestration_mask",
    "fenestrations",
    "intensity_range_of",
    "level_plan",
    "object_stats",
    "surface_shape",
    "write_report",
]
