"""Trusted labels: what reviewers approved becomes training data.

An approved slice item trusts that whole z slice of the reviewed layer; an approved cell
item trusts the voxels of that cell. Retrain (segmentation/modelloop/labels.py) fills
the manual layer's unlabeled voxels with them.
"""
from __future__ import annotations

from typing import Any

from annotations.layer_names import LayerName
from annotations.models import Volume
from annotations.reviews.models import ReviewItem


def trusted_sources(volume: Volume) -> list[dict[str, Any]]:
    """Approved items of the volume's reviews, per assignment.

    Returns
    -------
    list of dict
        ``[{"assignment": id, "layer": name, "kind": "labels"|"instances", "slices": [z...],
        "cells": [id...]}]`` ordered by assignment id; assignments with no approved item
        and reviews of the manual layer itself (already training data) are left out.
    """
    rows = (ReviewItem.objects.filter(assignment__volume=volume, state=ReviewItem.State.APPROVED)
            .exclude(assignment__layer__name=LayerName.MANUAL)
            .values_list("assignment_id", "assignment__layer__name", "assignment__layer__kind", "kind", "key")
            .order_by("assignment_id", "kind", "key"))
    out: dict[int, dict[str, Any]] = {}
    for aid, layer, kind, item_kind, key in rows:
        entry = out.setdefault(aid, {"assignment": aid, "layer": layer, "kind": kind, "slices": [], "cells": []})
        entry["slices" if item_kind == ReviewItem.Kind.SLICE else "cells"].append(int(key))
    return list(out.values())
