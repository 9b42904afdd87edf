"""REST endpoints of feature reports: run, list, read the cell table, download tables, meshes, layers."""
from __future__ import annotations

import zipfile
from typing import Any, cast

import trimesh
from django.http import FileResponse, Http404, HttpResponse, StreamingHttpResponse
from django.utils.text import slugify
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.access import project_for_user, volume_for_user
from annotations.models import Role, Volume
from emportal.errors import ApplicationError
from emportal.jobs.api import JobOutput, queued
from emportal.jobs.services import job_payload
from emportal.query_params import query_bool, query_choice
from emportal.schema import ErrorOutput, file_response
from segmentation.models import FeatureReport
from segmentation.reports import exports, outputs, selectors, services

_CONTENT_TYPES = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "parquet": "application/vnd.apache.parquet",
}


def _stem(report: FeatureReport) -> str:
    return f"{slugify(report.volume.name) or 'volume'}-report{report.pk}"


class ReportInput(serializers.Serializer):
    labels_layer = serializers.CharField(max_length=50, required=False,
                                         help_text="layer of organelle classes (default: the best one present)")
    cells_layer = serializers.CharField(max_length=50, required=False, help_text="layer of cell instance ids")
    fenestration_closing_nm = serializers.FloatField(min_value=0, max_value=10_000, default=0.0)
    meshes = serializers.BooleanField(default=True)


class VolumeReportsApi(APIView):
    @extend_schema(responses=outputs.VolumeReportsOutput)
    def get(self, request: Request, volume_id: int) -> Response:
        """The volume's reports (newest first), its usable layers and running report jobs."""
        volume, role = volume_for_user(request.user, volume_id)
        return Response({
            "reports": [selectors.report_payload(r) for r in selectors.report_list_for_volume(volume)
                        .select_related("volume", "volume__project")],
            "layers": selectors.report_default_layers(volume),
            "active_jobs": [job_payload(job) for job in selectors.report_jobs_active(volume)],
            "can_run": role >= Role.ANNOTATOR,
        })

    @extend_schema(request=ReportInput, responses={202: JobOutput, 409: ErrorOutput})
    def post(self, request: Request, volume_id: int) -> Response:
        """Queue a report job (annotators and above)."""
        volume, _ = volume_for_user(request.user, volume_id, min_role=Role.ANNOTATOR)
        data = ReportInput(data=request.data)
        data.is_valid(raise_exception=True)
        defaults = selectors.report_default_layers(volume)
        labels_layer = data.validated_data.get("labels_layer") or defaults["labels_layer"]
        cells_layer = data.validated_data.get("cells_layer") or defaults["cells_layer"]
        if labels_layer is None or cells_layer is None:
            raise ApplicationError("this volume needs a labels layer and a cells layer for a report",
                                   code="missing_layers", status_code=409)
        job = services.report_create(volume, request.user, labels_layer=labels_layer, cells_layer=cells_layer,
                                     fenestration_closing_nm=data.validated_data["fenestration_closing_nm"],
                                     meshes=data.validated_data["meshes"])
        return queued(job)


class ProjectReportsApi(APIView):
    @extend_schema(responses=outputs.ReportOutput(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        """The newest report of each volume of the project, for side-by-side plots."""
        project, _ = project_for_user(request.user, project_id)
        return Response(selectors.report_list_for_project(project))


class ReportDetailApi(APIView):
    @extend_schema(responses=outputs.ReportOutput)
    def get(self, request: Request, report_id: int) -> Response:
        report, _ = selectors.report_for_user(request.user, report_id)
        return Response(selectors.report_payload(report))


class ReportCellsApi(APIView):
    @extend_schema(responses=outputs.ReportCellsOutput)
    def get(self, request: Request, report_id: int) -> Response:
        """One row per cell: ``{"columns": [{name, unit, description}], "rows": [[...]]}``."""
        report, _ = selectors.report_for_user(request.user, report_id)
        return Response(selectors.report_cells_table(report))


class ReportDownloadApi(APIView):
    @extend_schema(responses=file_response(*_CONTENT_TYPES.values()))
    def get(self, request: Request, report_id: int, fmt: str) -> FileResponse:
        """The table as CSV, XLSX (with the ``columns`` sheet) or Parquet."""
        report, _ = selectors.report_for_user(request.user, report_id)
        path = selectors.report_file_path(report, fmt)
        return FileResponse(path.open("rb"), as_attachment=True, filename=f"{_stem(report)}.{fmt}",
                            content_type=_CONTENT_TYPES[fmt])


class ReportMeshApi(APIView):
    @extend_schema(parameters=[
        OpenApiParameter("resolution", str, enum=["view", "full"], default="view",
                         description="PLY only: full = made now from level 0, every triangle kept"),
        OpenApiParameter("download", bool, description="GLB only: as an attachment (default false)")],
        responses={**file_response("model/gltf-binary", "application/octet-stream"), 400: ErrorOutput})
    def get(self, request: Request, report_id: int, cell_id: int, part: str = "", fmt: str = "glb") -> Any:
        """A cell's meshes as one GLB (a named, coloured node per class), or one class as PLY.

        The GLB and PLY are the 3D view's meshes (a coarse level, simplified); a PLY with
        ``?resolution=full`` is made now from level 0, every triangle kept (cells up to
        ``FULL_MESH_MAX_VOXELS`` voxels in their box; larger ones get 413 ``mesh_too_large``).
        """
        report, _ = selectors.report_for_user(request.user, report_id)
        resolution = query_choice(request.query_params, "resolution", ("view", "full"), "view")
        download = query_bool(request.query_params, "download")
        if fmt == "ply" and resolution == "full":
            data = services.report_mesh_full_resolution(report, cell_id, part)
            response = HttpResponse(data, content_type="application/octet-stream")
            response["Content-Disposition"] = (
                f'attachment; filename="{_stem(report)}-cell{cell_id}-{part}-full.ply"')
            return response
        path = selectors.report_mesh_path(report, cell_id)
        if fmt == "glb":
            return FileResponse(path.open("rb"), as_attachment=download,
                                filename=f"{_stem(report)}-cell{cell_id}.glb", content_type="model/gltf-binary")
        scene = cast(trimesh.Scene, trimesh.load(path, file_type="glb", force="scene"))  # force="scene": a Scene
        geometry = scene.geometry.get(part)
        if geometry is None:
            raise Http404("not found")
        data = geometry.export(file_type="ply")
        response = HttpResponse(data, content_type="application/octet-stream")
        response["Content-Disposition"] = f'attachment; filename="{_stem(report)}-cell{cell_id}-{part}.ply"'
        return response


class ReportMeshesZipApi(APIView):
    @extend_schema(responses=file_response("application/zip"))
    def get(self, request: Request, report_id: int) -> StreamingHttpResponse:
        """Every cell's GLB in one zip, streamed file by file."""
        report, _ = selectors.report_for_user(request.user, report_id)
        paths = [selectors.report_mesh_path(report, cid) for cid in report.summary.get("mesh_cells", [])]
        if not paths:
            raise Http404("not found")
        stream = exports.files_zip_stream([(p, p.name) for p in paths], compression=zipfile.ZIP_DEFLATED)
        response = StreamingHttpResponse(stream, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{_stem(report)}-meshes.zip"'
        return response


def _layer_volume(request: Request, volume_id: int, layer: str) -> Volume:
    volume, _ = volume_for_user(request.user, volume_id)
    if volume.state != Volume.State.READY or not volume.layers.filter(name=layer).exists():
        raise Http404("not found")
    return volume


class LayerTiffApi(APIView):
    @extend_schema(responses=file_response("image/tiff"))
    def get(self, request: Request, volume_id: int, layer: str) -> FileResponse:
        """Level 0 of a label layer as a multipage TIFF (one page per z plane), made blockwise."""
        volume = _layer_volume(request, volume_id, layer)
        handle = exports.layer_tiff_file(volume, layer)
        return FileResponse(handle, as_attachment=True, content_type="image/tiff",
                            filename=f"{slugify(volume.name) or 'volume'}-{layer}.ome.tif")


class LayerZarrZipApi(APIView):
    @extend_schema(responses=file_response("application/zip"))
    def get(self, request: Request, volume_id: int, layer: str) -> StreamingHttpResponse:
        """A label layer's OME-Zarr label group (all levels, class colours) as a zip, streamed."""
        volume = _layer_volume(request, volume_id, layer)
        response = StreamingHttpResponse(exports.layer_zarr_zip_stream(volume, layer), content_type="application/zip")
        response["Content-Disposition"] = (
            f'attachment; filename="{slugify(volume.name) or "volume"}-{layer}.ome.zarr.zip"')
        return response
