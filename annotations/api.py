"""REST endpoints for projects, members and volumes: validate, call a service, shape the answer."""
from __future__ import annotations

import zlib
from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations import layer_mesh, selectors, services, strokes
from annotations.access import project_for_user, volume_for_user
from annotations.layer_names import LayerName
from annotations.layers import layer_get
from annotations.models import LabelClass, LabelLayer, Role, Stroke, Volume
from annotations.serializers import AXES, CompleteSliceInput, StrokeInput, stroke_input_validated, validated
from emportal.errors import ApplicationError
from emportal.jobs.api import JobOutput, queued
from emportal.parsers import JSONParser
from emportal.query_params import INT64_MAX, query_int, query_required_int
from emportal.schema import ErrorOutput, with_errors


class ProjectOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()


class ProjectListApi(APIView):
    @extend_schema(responses=ProjectOutput(many=True))
    def get(self, request: Request) -> Response:
        projects = selectors.project_list_for_user(request.user)
        return Response(ProjectOutput(projects, many=True).data)


class MemberInput(serializers.Serializer):
    username = serializers.CharField(max_length=254, help_text="user name or e-mail of an existing account")
    role = serializers.ChoiceField(choices=[r.label for r in Role])


class MemberOutput(serializers.Serializer):
    username = serializers.CharField()
    role = serializers.CharField()


class MemberRoleInput(serializers.Serializer):
    role = serializers.ChoiceField(choices=[r.label for r in Role])


def _member(membership: Any) -> dict[str, str]:
    return {"username": membership.user.username, "role": Role(membership.role).label}


class ProjectMembersApi(APIView):
    @extend_schema(request=MemberInput, responses={201: MemberOutput})
    def post(self, request: Request, project_id: int) -> Response:
        """A manager adds a user (by user name or e-mail) or changes their role."""
        project, _ = project_for_user(request.user, project_id, min_role=Role.MANAGER)
        data = validated(MemberInput, request.data)
        membership = services.member_set_role(project, data["username"], data["role"])
        return Response(_member(membership), status=status.HTTP_201_CREATED)

    @extend_schema(responses=MemberOutput(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = project_for_user(request.user, project_id)
        return Response([_member(m) for m in project.memberships.select_related("user").order_by("user__username")])


class ProjectMemberApi(APIView):
    @extend_schema(request=MemberRoleInput, responses=MemberOutput)
    def put(self, request: Request, project_id: int, username: str) -> Response:
        """A manager sets a member's role (the last manager keeps theirs)."""
        project, _ = project_for_user(request.user, project_id, min_role=Role.MANAGER)
        if not project.memberships.filter(user__username=username).exists():
            raise ApplicationError(f"{username!r} is not a member of this project", code="not_found",
                                   status_code=status.HTTP_404_NOT_FOUND)
        membership = services.member_set_role(project, username, validated(MemberRoleInput, request.data)["role"])
        return Response(_member(membership))

    @extend_schema(responses={204: None})
    def delete(self, request: Request, project_id: int, username: str) -> Response:
        """A manager takes a member out of the project (the last manager stays)."""
        project, _ = project_for_user(request.user, project_id, min_role=Role.MANAGER)
        services.member_remove(project, username)
        return Response(status=status.HTTP_204_NO_CONTENT)


class LabelClassOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    value = serializers.IntegerField()
    color = serializers.CharField()
    kind = serializers.CharField()
    parent = serializers.CharField(source="parent.name", default=None, allow_null=True)  # type: ignore[assignment]  # stubs: Field.parent


class LabelClassInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    color = serializers.CharField(max_length=7, help_text="#rrggbb")
    parent = serializers.CharField(max_length=100, required=False, allow_blank=True, allow_null=True,  # type: ignore[assignment]  # stubs: Field.parent
                                   help_text="name of the enclosing class (mitochondrion inside cell)")
    kind = serializers.ChoiceField(choices=LabelClass.Kind.values, required=False, default=LabelClass.Kind.SEMANTIC)


class LabelClassPatchInput(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    color = serializers.CharField(max_length=7, required=False, help_text="#rrggbb")
    parent = serializers.CharField(max_length=100, required=False, allow_blank=True, allow_null=True)  # type: ignore[assignment]  # stubs: Field.parent


class LabelClassListApi(APIView):
    @extend_schema(responses=LabelClassOutput(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = project_for_user(request.user, project_id)
        return Response(LabelClassOutput(project.label_classes.select_related("parent"), many=True).data)

    @extend_schema(request=LabelClassInput, responses={201: LabelClassOutput})
    def post(self, request: Request, project_id: int) -> Response:
        """A manager adds a class; it takes the next free label value."""
        project, _ = project_for_user(request.user, project_id, min_role=Role.MANAGER)
        data = validated(LabelClassInput, request.data)
        created = services.label_class_create(project, name=data["name"], color=data["color"],
                                              parent=data.get("parent"), kind=data["kind"])
        return Response(LabelClassOutput(created).data, status=status.HTTP_201_CREATED)


class LabelClassDetailApi(APIView):
    @extend_schema(request=LabelClassPatchInput, responses=LabelClassOutput)
    def patch(self, request: Request, project_id: int, class_id: int) -> Response:
        """A manager renames a class, recolours it or moves it under another; its value stays."""
        project, _ = project_for_user(request.user, project_id, min_role=Role.MANAGER)
        label_class = LabelClass.objects.filter(project=project, pk=class_id).select_related("parent").first()
        if label_class is None:
            raise ApplicationError(f"there is no class {class_id} in this project", code="not_found",
                                   status_code=status.HTTP_404_NOT_FOUND)
        data = validated(LabelClassPatchInput, request.data)
        updated = services.label_class_update(label_class, name=data.get("name"), color=data.get("color"),
                                              parent=data["parent"] if "parent" in data else ...)
        return Response(LabelClassOutput(updated).data)


class VolumeSummary(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    shape = serializers.ListField(child=serializers.IntegerField())
    voxel_size_nm = serializers.ListField(child=serializers.FloatField())
    dtype = serializers.CharField()


def _voxel_size(value: Any) -> tuple[float, float, float] | None:
    return tuple(value) if value else None


class VoxelSizeField(serializers.ListField):
    child = serializers.FloatField(min_value=1e-3, max_value=1e6)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_length=3, max_length=3, required=False, **kwargs)


class UploadInput(serializers.Serializer):
    file = serializers.FileField()
    name = serializers.CharField(max_length=200, required=False)
    voxel_size_nm = serializers.CharField(required=False, help_text="z,y,x in nm")

    def validate_voxel_size_nm(self, value: str) -> list[float]:
        try:
            parts = [float(v) for v in value.split(",")]
        except ValueError:
            raise serializers.ValidationError("give three numbers z,y,x") from None
        if len(parts) != 3 or not all(0 < v < 1e6 for v in parts):
            raise serializers.ValidationError("give three positive numbers z,y,x")
        return parts


class VolumeListApi(APIView):
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(responses=VolumeSummary(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = project_for_user(request.user, project_id)
        return Response(VolumeSummary(selectors.volume_list_for_project(project), many=True).data)

    @extend_schema(request={"multipart/form-data": UploadInput}, responses={202: JobOutput})
    def post(self, request: Request, project_id: int) -> Response:
        """Upload a volume file; it streams to disk and is converted by an import job."""
        project, _ = project_for_user(request.user, project_id, min_role=Role.ANNOTATOR)
        data = UploadInput(data=request.data)
        data.is_valid(raise_exception=True)
        job = services.volume_import_from_upload(
            project, data.validated_data["file"], user=request.user, name=data.validated_data.get("name"),
            voxel_size_nm=_voxel_size(data.validated_data.get("voxel_size_nm")))
        return queued(job)


class PathImportInput(serializers.Serializer):
    path = serializers.CharField(max_length=1000, help_text="relative to the server's data root")
    name = serializers.CharField(max_length=200, required=False)
    dataset = serializers.CharField(max_length=200, required=False, help_text="HDF5 dataset")
    voxel_size_nm = VoxelSizeField()


class VolumeImportPathApi(APIView):
    @extend_schema(request=PathImportInput, responses={202: JobOutput})
    def post(self, request: Request, project_id: int) -> Response:
        """Import a file or folder that already lies inside the server's data root."""
        project, _ = project_for_user(request.user, project_id, min_role=Role.ANNOTATOR)
        data = PathImportInput(data=request.data)
        data.is_valid(raise_exception=True)
        job = services.volume_import_from_path(
            project, data.validated_data["path"], user=request.user, name=data.validated_data.get("name"),
            voxel_size_nm=_voxel_size(data.validated_data.get("voxel_size_nm")),
            dataset=data.validated_data.get("dataset"))
        return queued(job)


class PyramidLevelOutput(serializers.Serializer):
    level = serializers.IntegerField(help_text="0 = full resolution")
    shape = serializers.ListField(child=serializers.IntegerField(), help_text="z, y, x")
    downsample = serializers.ListField(child=serializers.IntegerField(), help_text="z, y, x factors from level 0")


class VolumeLayerOutput(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=LabelLayer.Kind.choices)
    version = serializers.IntegerField(help_text="bumped by every change")
    editable = serializers.BooleanField(help_text="whether this user may paint it")
    max_value = serializers.IntegerField(help_text="largest value ever painted")


@extend_schema_field({"type": "array", "minItems": 2, "maxItems": 2,
                      "items": {"oneOf": [{"type": "string", "enum": list(AXES)}, {"type": "integer", "minimum": 0}]}})
class AxisIndexField(serializers.ListField):
    """A slice as [axis, index], e.g. ["z", 12]."""


class ProjectRefOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class VolumeDetailOutput(serializers.Serializer):
    """`selectors.volume_detail`: what the viewer needs to draw a volume."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    project = ProjectRefOutput()
    state = serializers.ChoiceField(choices=Volume.State.choices)
    shape = serializers.ListField(child=serializers.IntegerField(), help_text="z, y, x")
    voxel_size_nm = serializers.ListField(child=serializers.FloatField(), help_text="z, y, x")
    dtype = serializers.CharField()
    tile_size = serializers.IntegerField(help_text="tiles are tile_size x tile_size pixels")
    levels = PyramidLevelOutput(many=True)
    window = serializers.ListField(child=serializers.FloatField(), help_text="suggested contrast [lo, hi]")
    role = serializers.ChoiceField(choices=[r.label for r in Role], help_text="this user's role in the project")
    layers = VolumeLayerOutput(many=True)
    classes = LabelClassOutput(many=True)
    complete_slices = serializers.ListField(
        child=AxisIndexField(), help_text='[axis, index] pairs of the manual layer marked complete, e.g. ["z", 12]')


class VolumeDetailApi(APIView):
    @extend_schema(responses=with_errors(VolumeDetailOutput, 409))
    def get(self, request: Request, volume_id: int) -> Response:
        volume, role = volume_for_user(request.user, volume_id)
        if volume.state != volume.State.READY:
            raise ApplicationError(f"volume is {volume.state}", code="volume_not_ready", status_code=status.HTTP_409_CONFLICT)
        return Response(selectors.volume_detail(volume, role))


class StrokeAppliedOutput(serializers.Serializer):
    uuid = serializers.UUIDField()
    version = serializers.IntegerField(help_text="the layer's version after the stroke")
    duplicate = serializers.BooleanField(help_text="true when this UUID was applied before (200, nothing changed)")


class StrokeRowOutput(serializers.Serializer):
    uuid = serializers.UUIDField()
    user = serializers.CharField(allow_null=True)
    mode = serializers.CharField()
    axis = serializers.CharField()
    index = serializers.IntegerField()
    value = serializers.IntegerField()
    active = serializers.BooleanField()
    version = serializers.IntegerField()
    created = serializers.DateTimeField()


class StrokeListApi(APIView):
    @extend_schema(request=StrokeInput, responses={201: StrokeAppliedOutput, 200: StrokeAppliedOutput})
    def post(self, request: Request, volume_id: int) -> Response:
        """Apply a stroke (the REST twin of the websocket message); repeating a UUID changes nothing."""
        volume, role = volume_for_user(request.user, volume_id, min_role=Role.ANNOTATOR)
        outcome = strokes.stroke_apply(volume, request.user, role, stroke_input_validated(request.data))
        return Response({"uuid": outcome.uuid, "version": outcome.version, "duplicate": outcome.duplicate},
                        status=status.HTTP_200_OK if outcome.duplicate else status.HTTP_201_CREATED)

    @extend_schema(parameters=[OpenApiParameter("layer", str, default=LayerName.MANUAL.value, description="layer name")],
                   responses=StrokeRowOutput(many=True))
    def get(self, request: Request, volume_id: int) -> Response:
        """The latest strokes of a layer (history panel, audit)."""
        volume, _ = volume_for_user(request.user, volume_id)
        rows = (Stroke.objects.filter(layer__volume=volume, layer__name=request.query_params.get("layer", LayerName.MANUAL))
                .select_related("user").order_by("-id")[:200])
        return Response([{"uuid": str(s.uuid), "user": s.user.username if s.user else None, "mode": s.mode,
                          "axis": s.axis, "index": s.index, "value": s.value, "active": s.active,
                          "version": s.version, "created": s.created.isoformat()} for s in rows])


class StrokeToggledOutput(serializers.Serializer):
    uuid = serializers.UUIDField()
    version = serializers.IntegerField(help_text="the layer's version after the undo or redo")


class StrokeUndoApi(APIView):
    redo = False

    @extend_schema(request=None, responses=StrokeToggledOutput)
    def post(self, request: Request, volume_id: int, uuid: str) -> Response:
        volume, role = volume_for_user(request.user, volume_id, min_role=Role.ANNOTATOR)
        toggle = strokes.stroke_redo if self.redo else strokes.stroke_undo
        outcome = toggle(volume, request.user, role, uuid)
        return Response({"uuid": outcome.uuid, "version": outcome.version})


class CompleteSliceApi(APIView):
    @extend_schema(request=CompleteSliceInput, responses=CompleteSliceInput)
    def post(self, request: Request, volume_id: int) -> Response:
        volume, role = volume_for_user(request.user, volume_id, min_role=Role.ANNOTATOR)
        data = validated(CompleteSliceInput, request.data)
        strokes.slice_mark_complete(volume, request.user, role, **data)
        return Response(data)


class LayerValueOutput(serializers.Serializer):
    value = serializers.IntegerField(help_text="class value or cell id at the voxel; 0 is unlabeled")


class LayerValueApi(APIView):
    @extend_schema(parameters=[OpenApiParameter(axis, int, required=True, description=f"voxel {axis}, level 0")
                               for axis in "zyx"],
                   responses=with_errors(LayerValueOutput, 400))
    def get(self, request: Request, volume_id: int, layer: str) -> Response:
        """The label at voxel (z, y, x): the viewer's picker."""
        volume, _ = volume_for_user(request.user, volume_id)
        z, y, x = (query_required_int(request.query_params, k) for k in ("z", "y", "x"))
        return Response({"value": strokes.layer_value_at(volume, layer, z, y, x)})


class VoxelSizeInput(serializers.Serializer):
    voxel_size_nm = serializers.ListField(child=serializers.FloatField(min_value=1e-3, max_value=1e6),
                                          min_length=3, max_length=3, help_text="z, y, x in nm")


class VolumeVoxelSizeApi(APIView):
    @extend_schema(request=VoxelSizeInput, responses=VoxelSizeInput)
    def put(self, request: Request, volume_id: int) -> Response:
        """A manager corrects the voxel size (the image's and every label layer's scales, an
        audit event); the volume's latest feature report is computed again."""
        volume, _ = volume_for_user(request.user, volume_id, min_role=Role.MANAGER)
        data = VoxelSizeInput(data=request.data)
        data.is_valid(raise_exception=True)
        volume = services.volume_set_voxel_size(volume, request.user, tuple(data.validated_data["voxel_size_nm"]))
        return Response({"voxel_size_nm": list(volume.voxel_size_nm)})


class LayerMeshApi(APIView):
    @extend_schema(parameters=[OpenApiParameter("value", int, description="only this cell id (a cell layer)")],
                   responses={(200, "model/gltf-binary"): OpenApiTypes.BINARY, 400: ErrorOutput})
    def get(self, request: Request, volume_id: int, layer: str) -> HttpResponse:
        """The layer's surfaces as a GLB (nm, one node per class, or the cell `value`) for the
        viewer's 3D view; the ETag follows the layer version and the class colours."""
        volume, _ = volume_for_user(request.user, volume_id)
        label_layer = layer_get(volume, layer)
        if label_layer is None:
            raise ApplicationError(f"there is no layer {layer!r}", code="not_found", status_code=status.HTTP_404_NOT_FOUND)
        value = query_int(request.query_params, "value", None, maximum=INT64_MAX)
        palette = ",".join(f"{c.value}{c.color}" for c in volume.project.label_classes.all())
        etag = f'"mesh-{volume.pk}-{layer}-v{label_layer.version}-{value}-{zlib.crc32(palette.encode()):x}"'
        if request.headers.get("If-None-Match") == etag:
            return HttpResponse(status=304)
        response = HttpResponse(layer_mesh.layer_mesh_glb(volume, label_layer, value=value),
                                content_type="model/gltf-binary")
        response["ETag"] = etag
        response["Cache-Control"] = "private, no-cache"
        return response

