"""The answers of the report API as serializers, so the OpenAPI schema states every field.

Each one describes what a selector of this package returns (named in its docstring);
tests/segmentation/reports/test_outputs.py checks real payloads against the schema.
"""
from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from emportal.jobs.api import JobOutput


class ReportVolumeOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    shape = serializers.ListField(child=serializers.IntegerField(), help_text="z, y, x")
    voxel_size_nm = serializers.ListField(child=serializers.FloatField(), help_text="z, y, x")


class ReportProjectOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class ReportDownloadsOutput(serializers.Serializer):
    """URLs of the files the report has (a format it lacks is left out)."""

    csv = serializers.CharField(required=False)
    xlsx = serializers.CharField(required=False)
    parquet = serializers.CharField(required=False)
    meshes = serializers.CharField(required=False, help_text="every cell's GLB in one zip")


class ReportOutput(serializers.Serializer):
    """`selectors.report_payload`: a report without its table rows."""

    id = serializers.IntegerField()
    volume = ReportVolumeOutput()
    project = ReportProjectOutput()
    job = serializers.IntegerField(allow_null=True, help_text="the job that computed it")
    created = serializers.DateTimeField()
    labels_layer = serializers.CharField()
    cells_layer = serializers.CharField()
    classes = serializers.DictField(child=serializers.IntegerField(), help_text="{class name: label value}")
    colors = serializers.DictField(child=serializers.CharField(), help_text="{class name: #rrggbb}")
    hierarchy = serializers.DictField(child=serializers.CharField(allow_null=True),
                                      help_text="{class name: enclosing class name}")
    fenestration_closing_nm = serializers.FloatField()
    n_cells = serializers.IntegerField()
    means = serializers.DictField(child=serializers.FloatField(allow_null=True),
                                  help_text="{column: mean over cells}, null where no cell has a value")
    stale = serializers.BooleanField(help_text="a layer changed since the report was made")
    mesh_cells = serializers.ListField(child=serializers.IntegerField(), help_text="cells that have a mesh")
    measure_levels = serializers.DictField(child=serializers.IntegerField(),
                                           help_text="{column: pyramid level it was measured at, 0 = full}")
    level_voxel_nm = serializers.DictField(child=serializers.ListField(child=serializers.FloatField()),
                                           help_text="{level: voxel size z, y, x in nm there}")
    mesh_levels = serializers.DictField(child=serializers.IntegerField(), help_text="{cell id: level meshed at}")
    raised_levels = serializers.DictField(child=serializers.DictField(child=serializers.IntegerField()),
                                          help_text="{cell id: {planned level: level read}} for cells too large "
                                                    "for their planned level")
    downloads = ReportDownloadsOutput()
    cells_url = serializers.CharField()


class ReportLayersOutput(serializers.Serializer):
    """`selectors.report_default_layers`: the layers a report can use and the default of each."""

    labels_layers = serializers.ListField(child=serializers.CharField())
    cells_layers = serializers.ListField(child=serializers.CharField())
    labels_layer = serializers.CharField(allow_null=True)
    cells_layer = serializers.CharField(allow_null=True)


class VolumeReportsOutput(serializers.Serializer):
    reports = ReportOutput(many=True, help_text="newest first")
    layers = ReportLayersOutput()
    active_jobs = JobOutput(many=True, help_text="report jobs queued or running")
    can_run = serializers.BooleanField(help_text="whether this user may queue a report")


class ReportColumnOutput(serializers.Serializer):
    name = serializers.CharField()
    unit = serializers.CharField(allow_blank=True)
    description = serializers.CharField(allow_blank=True)


@extend_schema_field({"type": "array", "items": {"anyOf": [{"type": "number"}, {"type": "string"},
                                                           {"type": "boolean"}], "nullable": True}})
class CellRowField(serializers.ListField):
    """One cell's values in column order; null where a value does not apply."""


class ReportCellsOutput(serializers.Serializer):
    """`selectors.report_cells_table`: one row per cell."""

    columns = ReportColumnOutput(many=True)
    rows = serializers.ListField(child=CellRowField())
