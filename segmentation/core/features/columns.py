"""Column names, units and descriptions of the per-cell feature table.

:data:`COLUMNS` describes the table for the paper's classes; :func:`describe_columns`
for any other class set. The XLSX report's ``columns`` sheet and docs/FEATURES.md are
made from these, so a column exists in one place.
"""
from __future__ import annotations

from collections.abc import Mapping

from segmentation.core.classes import BACKGROUND
from segmentation.core.features.texture import GLCM_PROPS, INTENSITY_STATS

__all__ = ["DEFAULT_CLASSES", "COLUMNS", "check_classes", "describe_columns"]

DEFAULT_CLASSES: dict[str, int] = {"nucleus": 1, "nucleolus": 2, "mitochondrion": 3, "endosome": 4, "lysosome": 5}

# Classes with extra shape columns, by name.
NUCLEUS, NUCLEOLUS, MITOCHONDRION = "nucleus", "nucleolus", "mitochondrion"

_STAT_NAMES = {
    "std": "standard deviation",
    "p05": "5th percentile",
    "p25": "25th percentile",
    "p75": "75th percentile",
    "p95": "95th percentile",
}
_GLCM_UNITS = {"contrast": "grey level²", "dissimilarity": "grey level"}


def check_classes(classes: Mapping[str, int]) -> dict[str, int]:
    """Class name -> value without ``background``; ValueError on a value < 1 or a shared value."""
    out = {str(k): int(v) for k, v in classes.items() if str(k) != BACKGROUND}
    if not out:
        raise ValueError(f"classes {dict(classes)!r} name no class besides background")
    seen: dict[int, str] = {}
    for name, value in out.items():
        if value <= 0:
            raise ValueError(f"class {name!r} has value {value}; values must be >= 1 (0 = none)")
        if value in seen:
            raise ValueError(f"classes {seen[value]!r} and {name!r} share value {value}")
        seen[value] = name
    return out


def describe_columns(
    classes: Mapping[str, int] = DEFAULT_CLASSES,
) -> dict[str, tuple[str, str]]:
    """Unit and description of every column :func:`cell_features` writes, in column order.

    Returns
    -------
    dict of str to (unit, description)
        Unit ``"1"`` means dimensionless, ``"voxel"`` a voxel count or index, ``"intensity"``
        the image's grey values.
    """
    classes = check_classes(classes)
    cols: dict[str, tuple[str, str]] = {
        "cell_id": ("id", "Cell instance id in the cells volume."),
        "cell_volume_um3": ("µm³", "Cell volume: voxel count times voxel volume."),
        "cell_voxels": ("voxel", "Number of voxels of the cell."),
        "cell_centroid_z": ("voxel", "Plane index of the cell's centre of mass."),
        "cell_centroid_y": ("voxel", "Row index of the cell's centre of mass."),
        "cell_centroid_x": ("voxel", "Column index of the cell's centre of mass."),
        "cell_touches_border": ("bool", "True when the cell reaches the volume's edge, so it is cut and its volumes are partial."),
    }
    for name in classes:
        cols[f"{name}_volume_um3"] = ("µm³", f"Total {name} volume inside the cell (a class includes the classes nested in it).")
        cols[f"{name}_count"] = ("1", f"Number of {name} objects in the cell (26-connected components).")
        cols[f"{name}_pct_of_cell"] = ("%", f"{name} volume as a percentage of the cell volume.")
        cols[f"{name}_mean_volume_um3"] = ("µm³", f"Mean volume of one {name} object (empty when there is none).")
    if NUCLEUS in classes:
        cols["nucleus_surface_um2"] = ("µm²", "Surface area of the largest nucleus object: marching cubes at level 0.5 of the mask smoothed with a 1-voxel Gaussian, with the voxel size as spacing.")
        cols["nucleus_solidity"] = ("1", "Volume of that nucleus surface mesh over the volume of the convex hull of its vertices (1 = convex).")
        cols["nucleus_sphericity"] = ("1", "pi^(1/3) (6 V)^(2/3) / A of that mesh (1 = ball).")
    if NUCLEOLUS in classes:
        cols["nucleolus_fenestration_volume_um3"] = ("µm³", "Volume of the fenestrations of the cell's nucleoli (see docs/FEATURES.md for the envelope).")
        cols["nucleolus_fenestrated_pct"] = ("%", "Fenestration volume / (nucleolus + fenestration volume) x 100.")
        cols["nucleolus_fenestration_count"] = ("1", "Number of fenestrations (6-connected components of fenestration voxels).")
    if MITOCHONDRION in classes:
        cols["mitochondrion_elongation"] = ("1", "Mean over the cell's mitochondria of the longest / shortest principal axis (second moments, 1 = round).")
    for region in ["cell", *classes]:
        where = "the cell" if region == "cell" else f"the cell's {region} voxels"
        for stat in INTENSITY_STATS:
            cols[f"texture_{region}_{stat}"] = ("intensity", f"Image intensity {_STAT_NAMES.get(stat, stat)} over {where}.")
        for prop in GLCM_PROPS:
            cols[f"texture_{region}_glcm_{prop}"] = (
                _GLCM_UNITS.get(prop, "1"),
                f"GLCM {prop} over {where} (3D, 13 directions, distance 1 voxel; see docs/FEATURES.md).",
            )
    return cols


COLUMNS: dict[str, tuple[str, str]] = describe_columns(DEFAULT_CLASSES)
