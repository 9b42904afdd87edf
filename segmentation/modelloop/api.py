"""REST endpoints of the model loop: versions (list, activate, compare, download, import), retrain,
segment, suggestions, accept.

Thin: check the role (outsiders 404, lower roles 403), validate, call one service,
shape the answer. Actions need the annotator role; reads any member.
"""
from __future__ import annotations

from typing import Any

from django.http import Http404, HttpResponse, JsonResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.access import project_for_user, volume_for_user
from annotations.layer_names import LayerName
from annotations.models import Role
from emportal.errors import ApplicationError
from emportal.jobs.api import QUEUED_RESPONSES, queued
from emportal.query_params import query_int, query_required_int
from emportal.schema import ErrorOutput, file_response, nullable, with_errors
from segmentation.modelloop import outputs, pretrain, retrain, segment, selectors, transfer
from segmentation.models import ModelVersion, SegmentationRun


def _model_for_user(request: Request, model_id: int, *, min_role: Role = Role.VIEWER) -> ModelVersion:
    model = ModelVersion.objects.select_related("created_by").filter(pk=model_id).first()
    if model is None:
        raise Http404("not found")
    project_for_user(request.user, model.project_id, min_role=min_role)
    return model


def _run_for_user(request: Request, run_id: int, *, min_role: Role = Role.VIEWER) -> SegmentationRun:
    run = SegmentationRun.objects.select_related("volume").filter(pk=run_id).first()
    if run is None:
        raise Http404("not found")
    volume_for_user(request.user, run.volume_id, min_role=min_role)
    return run


def run_or_null(run: SegmentationRun | None) -> HttpResponse:
    """A run's payload, or the JSON literal null when there is none."""
    # DRF renders None as an empty body; the panels want the JSON literal null.
    return JsonResponse(selectors.run_payload(run) if run else None, safe=False)


# ---------------------------------------------------------------- model versions
class ModelListApi(APIView):
    @extend_schema(parameters=[OpenApiParameter("volume", int, description="only versions trained on this volume")],
                   responses=with_errors(outputs.ModelOutput(many=True), 400))
    def get(self, request: Request, project_id: int) -> Response:
        """The project's model versions, newest first (`?volume=<id>`: those trained on it)."""
        project, _ = project_for_user(request.user, project_id)
        models = ModelVersion.objects.filter(project=project).select_related("created_by").order_by("-created", "-pk")
        volume = query_int(request.query_params, "volume", None)
        if volume is not None:
            models = models.filter(volume_id=volume)
        return Response([selectors.model_payload(m) for m in models[:200]])


class ModelDetailApi(APIView):
    @extend_schema(responses=outputs.ModelOutput)
    def get(self, request: Request, model_id: int) -> Response:
        return Response(selectors.model_payload(_model_for_user(request, model_id)))


class ModelActivateApi(APIView):
    @extend_schema(request=None, responses=with_errors(outputs.ModelOutput, 409))
    def post(self, request: Request, model_id: int) -> Response:
        """Make this version the one Segment uses and Retrain fine-tunes."""
        model = _model_for_user(request, model_id, min_role=Role.ANNOTATOR)
        return Response(selectors.model_payload(retrain.model_activate(model, request.user)))


class ModelCompareApi(APIView):
    @extend_schema(responses=outputs.ModelCompareOutput)
    def get(self, request: Request, model_id: int, other_id: int) -> Response:
        """Two versions side by side: validation Dice per class and its change (other - this)."""
        a = _model_for_user(request, model_id)
        b = _model_for_user(request, other_id)
        if a.project_id != b.project_id:
            raise Http404("not found")
        return Response(selectors.models_compare(a, b))


# ---------------------------------------------------------------- a version out and in
_DOWNLOAD_TYPES = {"pt": "application/octet-stream", "onnx": "application/octet-stream"}


class ModelDownloadApi(APIView):
    fmt = "pt"

    @extend_schema(responses=file_response("application/octet-stream"))
    def get(self, request: Request, model_id: int) -> HttpResponse:
        """The version as a file another install imports (`.pt`), or as ONNX for inference elsewhere."""
        model = (ModelVersion.objects.select_related("project", "volume", "created_by")
                 .filter(pk=model_id).first())
        if model is None:
            raise Http404("not found")
        project_for_user(request.user, model.project_id)
        body = transfer.model_version_file(model) if self.fmt == "pt" else transfer.model_version_onnx(model)
        response = HttpResponse(body, content_type=_DOWNLOAD_TYPES[self.fmt])
        name = f"{model.project.name}-model-v{model.pk}".replace('"', "").replace("/", "-")
        response["Content-Disposition"] = f'attachment; filename="{name}.{self.fmt}"'
        return response


class ModelImportInput(serializers.Serializer):
    file = serializers.FileField(help_text="a model file downloaded from an EM Portal (.pt)")


class ModelImportApi(APIView):
    parser_classes = [MultiPartParser]

    @extend_schema(request={"multipart/form-data": ModelImportInput}, responses={201: outputs.ModelOutput, 400: ErrorOutput})
    def post(self, request: Request, project_id: int) -> Response:
        """Import a model file as a new, inactive version of the project (its classes must be the project's)."""
        project, _ = project_for_user(request.user, project_id, min_role=Role.ANNOTATOR)
        data = ModelImportInput(data=request.data)
        if not data.is_valid():
            raise ApplicationError("send the model file as the form field 'file'", code="invalid", detail=data.errors)
        model = transfer.model_version_import(project, request.user, data.validated_data["file"])
        return Response(selectors.model_payload(model), status=status.HTTP_201_CREATED)


# ---------------------------------------------------------------- jobs
class RetrainInput(serializers.Serializer):
    minutes = serializers.FloatField(default=5.0, min_value=0.01, max_value=retrain.MAX_MINUTES)
    from_scratch = serializers.BooleanField(default=False)
    max_steps = serializers.IntegerField(required=False, min_value=1)
    config = serializers.DictField(child=serializers.IntegerField(), required=False)
    pretrained = serializers.BooleanField(
        default=retrain.PRETRAINED_BY_DEFAULT,
        help_text="a model trained from scratch starts its encoder from the project's latest pretrained one")


class RetrainApi(APIView):
    @extend_schema(request=RetrainInput, responses=QUEUED_RESPONSES)
    def post(self, request: Request, volume_id: int) -> Response:
        """Queue a retrain on this volume's labels; the job's progress comes over the websocket."""
        volume, _ = volume_for_user(request.user, volume_id, min_role=Role.ANNOTATOR)
        data = RetrainInput(data=request.data)
        data.is_valid(raise_exception=True)
        job = retrain.model_retrain(volume, request.user, **data.validated_data)
        return queued(job)


class PretrainInput(serializers.Serializer):
    minutes = serializers.FloatField(default=10.0, min_value=0.01, max_value=pretrain.MAX_MINUTES)
    max_steps = serializers.IntegerField(required=False, min_value=1)
    config = serializers.DictField(child=serializers.IntegerField(), required=False,
                                   help_text="network and patch settings over the defaults, as for a retrain")


class PretrainApi(APIView):
    @extend_schema(request=PretrainInput, responses=QUEUED_RESPONSES)
    def post(self, request: Request, project_id: int) -> Response:
        """Queue a pretraining of the project's encoder on the unlabeled voxels of all its ready volumes."""
        project, _ = project_for_user(request.user, project_id, min_role=Role.ANNOTATOR)
        data = PretrainInput(data=request.data)
        data.is_valid(raise_exception=True)
        job = pretrain.encoder_pretrain(project, request.user, **data.validated_data)
        return queued(job)


class SegmentInput(serializers.Serializer):
    model = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1,
                                     help_text="model version id (default: the active one)")
    k = serializers.IntegerField(default=6, min_value=1, max_value=50)
    tile = serializers.IntegerField(required=False, min_value=16, max_value=2048)
    tta = serializers.BooleanField(required=False, allow_null=True, default=None,
                                   help_text="average the four flips (default: as the model was trained to predict)")


class SegmentApi(APIView):
    @extend_schema(request=SegmentInput, responses=QUEUED_RESPONSES)
    def post(self, request: Request, volume_id: int) -> Response:
        """Queue a prediction of the volume into its "prediction" layer, then suggestions."""
        volume, _ = volume_for_user(request.user, volume_id, min_role=Role.ANNOTATOR)
        data = SegmentInput(data=request.data)
        data.is_valid(raise_exception=True)
        model = None
        if "model" in data.validated_data:
            model = ModelVersion.objects.filter(pk=data.validated_data["model"], project_id=volume.project_id).first()
            if model is None:
                raise ApplicationError("no such model version in this project", code="not_found", status_code=404)
        job = segment.volume_segment(volume, request.user, model_version=model, k=data.validated_data["k"],
                                              tile=data.validated_data.get("tile"), tta=data.validated_data["tta"])
        return queued(job)


# ---------------------------------------------------------------- suggestions
class SuggestionListApi(APIView):
    @extend_schema(responses={200: nullable(outputs.RunOutput)})
    def get(self, request: Request, volume_id: int) -> HttpResponse:
        """The latest prediction run with its regions to label next (null before any Segment)."""
        volume, _ = volume_for_user(request.user, volume_id)
        run = selectors.latest_run(volume, LayerName.PREDICTION)
        return run_or_null(run)


class SuggestionDismissApi(APIView):
    @extend_schema(request=None, responses=outputs.RunOutput)
    def post(self, request: Request, run_id: int, index: int) -> Response:
        run = _run_for_user(request, run_id, min_role=Role.ANNOTATOR)
        return Response(selectors.run_payload(segment.suggestion_dismiss(run, index, request.user)))


THUMBNAIL_PARAMETERS = [
    *(OpenApiParameter(name, int, required=True, description=text) for name, text in (
        ("z", "slice"), ("y0", "first row"), ("x0", "first column"), ("y1", "row after the last"),
        ("x1", "column after the last"))),
    OpenApiParameter("size", int, default=96, description="longest side in pixels, 8..512"),
    OpenApiParameter("overlay", str, description="a label layer to blend over the image in the class colours")]


class ThumbnailApi(APIView):
    @extend_schema(parameters=THUMBNAIL_PARAMETERS,
                   responses={(200, "image/png"): OpenApiTypes.BINARY, 400: ErrorOutput})
    def get(self, request: Request, volume_id: int) -> HttpResponse:
        """PNG of a region of one slice: ?z=&y0=&x0=&y1=&x1=[&size=96][&overlay=prediction]."""
        volume, _ = volume_for_user(request.user, volume_id)
        q = request.query_params
        z, y0, x0, y1, x1 = (query_required_int(q, k) for k in ("z", "y0", "x0", "y1", "x1"))
        size = query_int(q, "size", 96, minimum=8, maximum=512)
        overlay = q.get("overlay") or None
        body = segment.region_thumbnail_png(volume, z=z, y0=y0, x0=x0, y1=y1, x1=x1, size=size,
                                                     overlay=overlay)
        response = HttpResponse(body, content_type="image/png")
        response["Cache-Control"] = "private, max-age=60"
        return response


# ---------------------------------------------------------------- accept prediction
class AcceptInput(serializers.Serializer):
    uuid = serializers.UUIDField()
    layer = serializers.CharField(max_length=50, default=LayerName.MANUAL.value)
    axis = serializers.ChoiceField(choices=["z", "y", "x"])
    index = serializers.IntegerField(min_value=0)
    points = serializers.ListField(child=serializers.ListField(child=serializers.FloatField(), min_length=2,
                                                               max_length=2), min_length=1, max_length=20000)
    radius = serializers.FloatField(default=4.0, min_value=0, max_value=512)


class AcceptPredictionApi(APIView):
    @extend_schema(request=AcceptInput, responses={201: outputs.StrokeAcceptedOutput, 200: outputs.StrokeAcceptedOutput})
    def post(self, request: Request, volume_id: int) -> Response:
        """Copy the prediction under a brush gesture into the manual layer (one undoable stroke)."""
        volume, role = volume_for_user(request.user, volume_id, min_role=Role.ANNOTATOR)
        data = AcceptInput(data=request.data)
        data.is_valid(raise_exception=True)
        payload: dict[str, Any] = {**data.validated_data, "uuid": str(data.validated_data["uuid"])}
        outcome = segment.prediction_accept(volume, request.user, role, payload)
        return Response({"uuid": outcome.uuid, "version": outcome.version, "duplicate": outcome.duplicate},
                        status=status.HTTP_200_OK if outcome.duplicate else status.HTTP_201_CREATED)
