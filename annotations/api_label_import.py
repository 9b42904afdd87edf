"""REST endpoint of the label import (annotations/label_import.py): validate, call the service, answer the job."""
from __future__ import annotations

import json
from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations import label_import
from annotations.access import volume_for_user
from annotations.layer_names import LayerName
from annotations.models import Role
from emportal.jobs.api import QUEUED_RESPONSES, queued
from emportal.parsers import JSONParser


@extend_schema_field({"oneOf": [
    {"type": "object", "additionalProperties": {"oneOf": [{"type": "string"}, {"type": "integer"}]}},
    {"type": "string", "example": "1=mitochondrion,2=nucleus"},
]})
class MappingField(serializers.Field):
    """{"1": "mitochondrion", "2": "nucleus"}, or the same as text "1=mitochondrion,2=nucleus"
    (a multipart form may also send the object as JSON text)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str) and data.strip().startswith("{"):
            try:
                data = json.loads(data)
            except ValueError:
                raise serializers.ValidationError("the mapping is not valid JSON") from None
        if isinstance(data, dict) and all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in data.values()):
            return data
        if isinstance(data, str) and len(data) <= 10_000:
            return data
        raise serializers.ValidationError("give {value: class} or text like 1=mitochondrion,2=nucleus")

    def to_representation(self, value: Any) -> Any:
        return value


class LabelImportInput(serializers.Serializer):
    file = serializers.FileField(required=False, help_text="a TIFF, HDF5 or MRC upload; or give path")
    path = serializers.CharField(max_length=1000, required=False, help_text="relative to the server's data root")
    dataset = serializers.CharField(max_length=200, required=False, allow_blank=True,
                                    help_text="HDF5 dataset, Zarr array or NGFF label group, TIFF image number")
    layer = serializers.RegexField(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,49}$", required=False, default=LayerName.MANUAL.value)
    kind = serializers.ChoiceField(choices=[k.value for k in label_import.KINDS], required=False,
                                   help_text="for a new layer: labels (classes, mapped) or instances (cell ids)")
    mapping = MappingField(required=False, help_text="file value -> class name or value; 0 ignores a value")
    mode = serializers.ChoiceField(choices=label_import.MODES, required=False, default="merge",
                                   help_text="merge: the file's zeros keep the layer; replace: the layer is the file")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("file" in attrs) == ("path" in attrs):
            raise serializers.ValidationError("give either a file or a path")
        return attrs


class LabelImportApi(APIView):
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(request={"application/json": LabelImportInput, "multipart/form-data": LabelImportInput},
                   responses=QUEUED_RESPONSES)
    def post(self, request: Request, volume_id: int) -> Response:
        """Import a label volume into a layer of this volume as one undoable stroke (a job)."""
        volume, _ = volume_for_user(request.user, volume_id, min_role=Role.ANNOTATOR)
        data = LabelImportInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        options = {"user": request.user, "layer": v["layer"], "kind": v.get("kind"), "mapping": v.get("mapping"),
                   "dataset": v.get("dataset") or None, "mode": v["mode"]}
        if "file" in v:
            job = label_import.label_import_from_upload(volume, v["file"], **options)
        else:
            job = label_import.label_import_from_path(volume, v["path"], **options)
        return queued(job)
