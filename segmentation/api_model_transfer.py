"""REST endpoints that move model versions between installs: download (model file or ONNX) and import."""
from __future__ import annotations

from django.http import Http404, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.access import project_for_user
from annotations.models import Role
from emportal.errors import ApplicationError
from emportal.schema import file_response
from segmentation import model_transfer
from segmentation.models import ModelVersion
from segmentation.training_services import model_payload

_TYPES = {"pt": "application/octet-stream", "onnx": "application/octet-stream"}


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
        body = model_transfer.model_version_file(model) if self.fmt == "pt" else model_transfer.model_version_onnx(model)
        response = HttpResponse(body, content_type=_TYPES[self.fmt])
        name = f"{model.project.name}-model-v{model.pk}".replace('"', "").replace("/", "-")
        response["Content-Disposition"] = f'attachment; filename="{name}.{self.fmt}"'
        return response


class ModelImportInput(serializers.Serializer):
    file = serializers.FileField(help_text="a model file downloaded from an EM Portal (.pt)")


class ModelImportApi(APIView):
    parser_classes = [MultiPartParser]

    @extend_schema(request={"multipart/form-data": ModelImportInput}, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request, project_id: int) -> Response:
        """Import a model file as a new, inactive version of the project (its classes must be the project's)."""
        project, _ = project_for_user(request.user, project_id, min_role=Role.ANNOTATOR)
        data = ModelImportInput(data=request.data)
        if not data.is_valid():
            raise ApplicationError("send the model file as the form field 'file'", code="invalid", detail=data.errors)
        model = model_transfer.model_version_import(project, request.user, data.validated_data["file"])
        return Response(model_payload(model), status=status.HTTP_201_CREATED)
