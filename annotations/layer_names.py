"""The names of the label layers the app itself makes or reads, one enum for the app and the CLI.

Django-free, so the command line tools (segmentation/commands) share it. A member is a
``str``: it is the layer's name wherever a name is stored, compared, sent or joined into a path.
Users may name further layers freely (imports, reviews); these are the ones code refers to.
"""
from __future__ import annotations

from enum import StrEnum


class LayerName(StrEnum):
    """Layer names with a meaning in code; what writes each is said beside it."""

    MANUAL = "manual"  # the annotators' class labels; every volume has it from import on
    CELLS = "cells"  # cell ids painted on key slices (the instance tool)
    PREDICTION = "prediction"  # the segment job's output (read-only)
    CELLS_AUTO = "cells_auto"  # the cells job's output (read-only)
    TRUTH = "truth"  # ground-truth class labels (the demo's phantom; read-only)
    CELLS_TRUTH = "cells_truth"  # ground-truth cell ids (the demo's phantom; read-only)
