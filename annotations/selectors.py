"""Reads for projects and volumes, always scoped to what the user may see."""
from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from annotations.layer_names import LayerName
from annotations.models import Project, Role, Volume


def project_list_for_user(user: Any) -> QuerySet[Project]:
    return Project.objects.filter(memberships__user=user).order_by("name")


def volume_list_for_project(project: Project) -> QuerySet[Volume]:
    return project.volumes.filter(state=Volume.State.READY).order_by("name")


def volume_detail(volume: Volume, role: Role) -> dict[str, Any]:
    """The metadata the viewer needs to draw a volume, as the REST API returns it."""
    layers = list(volume.layers.all())
    complete = [[c.axis, c.index] for layer in layers if layer.name == LayerName.MANUAL
                for c in layer.complete_slices.all()]
    return {
        "id": volume.pk,
        "name": volume.name,
        "project": {"id": volume.project_id, "name": volume.project.name},
        "state": volume.state,
        "shape": list(volume.shape),
        "voxel_size_nm": list(volume.voxel_size_nm),
        "dtype": volume.dtype,
        "tile_size": 256,
        "levels": volume.levels,
        "window": volume.window,
        "role": role.label,
        "layers": [{"name": layer.name, "kind": layer.kind, "version": layer.version,
                    "editable": layer.editable and role >= Role.ANNOTATOR, "max_value": layer.max_value}
                   for layer in layers],
        "classes": [{"id": c.pk, "name": c.name, "value": c.value, "color": c.color, "kind": c.kind,
                     "parent": c.parent.name if c.parent else None}
                    for c in volume.project.label_classes.select_related("parent")],
        "complete_slices": complete,
    }


