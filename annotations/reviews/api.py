"""REST endpoints of team review: check the role, call a service, shape the answer."""
from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations import tiles as tile_views
from annotations.access import project_for_user, volume_for_user
from annotations.models import LabelClass, LabelLayer, Role
from annotations.reviews import assignments, audit, comments, diff, notifications
from annotations.reviews.models import Comment
from emportal.errors import ApplicationError, error_response


def _flag(request: Request, name: str) -> bool:
    return str(request.query_params.get(name, "")).lower() in ("1", "true", "yes")


# ---------------------------------------------------------------- assignments
class AssignmentInput(serializers.Serializer):
    """Shape only; the service checks the volume, layer, range, cells and people."""

    volume = serializers.IntegerField()
    layer = serializers.CharField(max_length=50)
    scope = serializers.CharField(max_length=10, default="slices")
    z0 = serializers.IntegerField(required=False, allow_null=True)
    z1 = serializers.IntegerField(required=False, allow_null=True)
    cells = serializers.ListField(child=serializers.IntegerField(), required=False, allow_null=True)
    reviewer = serializers.CharField(max_length=150)
    fixer = serializers.CharField(max_length=150)
    due = serializers.CharField(max_length=20, required=False, allow_blank=True, allow_null=True,
                                help_text="YYYY-MM-DD")
    note = serializers.CharField(max_length=5000, required=False, allow_blank=True)


class ReviewListApi(APIView):
    @extend_schema(parameters=[OpenApiParameter("state", str), OpenApiParameter("volume", int),
                               OpenApiParameter("mine", bool)], responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = project_for_user(request.user, project_id)
        rows = assignments.assignments_list(project, request.user, state=request.query_params.get("state"),
                                            volume=request.query_params.get("volume"), mine=_flag(request, "mine"))
        return Response({"results": rows})

    @extend_schema(request=AssignmentInput, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request, project_id: int) -> Response:
        """Create a review assignment (managers)."""
        project, _ = project_for_user(request.user, project_id, min_role=Role.MANAGER)
        data = AssignmentInput(data=request.data)
        data.is_valid(raise_exception=True)
        a = assignments.assignment_create(project, request.user, **data.validated_data)
        return Response(assignments.assignment_detail(a), status=status.HTTP_201_CREATED)


class ReviewSummaryApi(APIView):
    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = project_for_user(request.user, project_id)
        return Response(assignments.assignments_summary(project))


class ReviewDetailApi(APIView):
    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, review_id: int) -> Response:
        a, _ = assignments.assignment_for_user(request.user, review_id)
        return Response(assignments.assignment_detail(a))

    @extend_schema(responses={204: None})
    def delete(self, request: Request, review_id: int) -> Response:
        a, _ = assignments.assignment_for_user(request.user, review_id, min_role=Role.MANAGER)
        assignments.assignment_delete(a, request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TransitionInput(serializers.Serializer):
    action = serializers.CharField(max_length=30)
    comment = serializers.CharField(max_length=5000, required=False, allow_blank=True, allow_null=True)
    z = serializers.IntegerField(required=False, allow_null=True)
    y = serializers.IntegerField(required=False, allow_null=True)
    x = serializers.IntegerField(required=False, allow_null=True)


class ReviewTransitionApi(APIView):
    @extend_schema(request=TransitionInput, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, review_id: int) -> Response:
        """start | request_changes | mark_fixed | approve | reopen (see annotations/reviews/assignments.py)."""
        a, role = assignments.assignment_for_user(request.user, review_id, min_role=Role.ANNOTATOR)
        data = TransitionInput(data=request.data)
        data.is_valid(raise_exception=True)
        a = assignments.assignment_transition(a, request.user, role, **data.validated_data)
        return Response(assignments.assignment_detail(a))


class ItemInput(TransitionInput):
    action = None  # type: ignore[assignment]  # DRF: None drops the inherited field
    kind = serializers.CharField(max_length=10)
    key = serializers.IntegerField(min_value=0)
    decision = serializers.CharField(max_length=30)


class ReviewItemApi(APIView):
    @extend_schema(request=ItemInput, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, review_id: int) -> Response:
        """Decide one slice or cell: approve | request_changes (reviewers), fixed (annotators)."""
        a, role = assignments.assignment_for_user(request.user, review_id, min_role=Role.ANNOTATOR)
        data = ItemInput(data=request.data)
        data.is_valid(raise_exception=True)
        item = assignments.item_decide(a, request.user, role, **data.validated_data)
        a.refresh_from_db()
        return Response({"item": {"kind": item.kind, "key": item.key, "state": item.state,
                                  "decided_by": request.user.username,
                                  "decided_at": item.decided_at.isoformat() if item.decided_at else None},
                         "assignment": assignments.assignment_payload(a)})


# ---------------------------------------------------------------- comments
class CommentInput(serializers.Serializer):
    z = serializers.IntegerField()
    y = serializers.IntegerField()
    x = serializers.IntegerField()
    text = serializers.CharField(max_length=5000, allow_blank=True, trim_whitespace=False)
    layer = serializers.CharField(max_length=50, required=False, allow_blank=True, allow_null=True)
    assignment = serializers.IntegerField(required=False, allow_null=True)
    parent = serializers.IntegerField(required=False, allow_null=True)  # type: ignore[assignment]  # a field, not Field.parent


class VolumeCommentsApi(APIView):
    @extend_schema(parameters=[OpenApiParameter("open", bool), OpenApiParameter("assignment", int)],
                   responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, volume_id: int) -> Response:
        volume, _ = volume_for_user(request.user, volume_id)
        return Response({"results": comments.comments_list(volume, open_only=_flag(request, "open"),
                                                           assignment=request.query_params.get("assignment"))})

    @extend_schema(request=CommentInput, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request, volume_id: int) -> Response:
        volume, role = volume_for_user(request.user, volume_id, min_role=Role.ANNOTATOR)
        data = CommentInput(data=request.data)
        data.is_valid(raise_exception=True)
        c = comments.comment_add(volume, request.user, role, **data.validated_data)
        return Response(comments.comment_payload(c), status=status.HTTP_201_CREATED)


class CommentResolveApi(APIView):
    resolved = True

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, comment_id: int) -> Response:
        c = Comment.objects.select_related("volume", "layer", "author").filter(pk=comment_id).first()
        if c is None:
            raise Http404("not found")
        _, role = volume_for_user(request.user, c.volume_id, min_role=Role.ANNOTATOR)
        c = comments.comment_set_resolved(c, request.user, role, resolved=self.resolved)
        return Response(comments.comment_payload(c))


# ---------------------------------------------------------------- diff
class DiffApi(APIView):
    @extend_schema(parameters=[OpenApiParameter("a", str, required=True), OpenApiParameter("b", str, required=True),
                               OpenApiParameter("z0", int), OpenApiParameter("z1", int)],
                   responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, volume_id: int) -> Response:
        """Disagreement and Dice per class (and per cell) between layers a and b, where both are labeled."""
        volume, _ = volume_for_user(request.user, volume_id)
        q = request.query_params
        return Response(diff.layers_diff(volume, q.get("a"), q.get("b"), z0=q.get("z0"), z1=q.get("z1")))


@require_GET
def diff_tile(request: HttpRequest, volume_id: int, axis: str, index: int, level: int, ty: int, tx: int
              ) -> HttpResponse:
    """RGBA PNG of where layers ?a= and ?b= disagree, in layer b's class colours (plain view, like label tiles)."""
    volume = tile_views.tile_volume(request, volume_id, level)
    layers = LabelLayer.objects.filter(volume_id=volume_id)
    try:
        layer_a, layer_b = diff.diff_layers_of(_LayersOnly(layers, volume_id), request.GET.get("a"),
                                               request.GET.get("b"))
    except ApplicationError as exc:
        return error_response(exc)
    etag = (f'"diff-{volume_id}-{layer_a.name}-v{layer_a.version}-{layer_b.name}-v{layer_b.version}'
            f'-{axis}{index}-{level}-{ty}-{tx}"')

    def render() -> bytes:
        colors = {c.value: c.rgba for c in LabelClass.objects.filter(project_id=volume["project_id"])}
        return diff.render_diff_tile(volume, layer_a, layer_b, axis=axis, index=index, level=level, ty=ty, tx=tx,
                                     colors=colors)

    return tile_views.tile_response(request, etag, render, "png", "private, no-cache")


class _LayersOnly:
    """The bit of a Volume that diff_layers_of reads, without loading the volume row again."""

    def __init__(self, layers: Any, volume_id: int) -> None:
        self.layers, self.name = layers, f"volume {volume_id}"


# ---------------------------------------------------------------- audit trail
def _since(value: Any) -> dt.datetime | None:
    if value in (None, ""):
        return None
    try:
        when = dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise ApplicationError(f"since {value!r} is not an ISO date or date-time", code="bad_date") from None
    return timezone.make_aware(when) if timezone.is_naive(when) else when


def _limit(value: Any) -> int:
    if value in (None, ""):
        return 1000
    try:
        limit = int(value)
    except ValueError:
        raise ApplicationError(f"limit {value!r} is not an integer", code="invalid") from None
    if not 1 <= limit <= audit.MAX_LIMIT:
        raise ApplicationError(f"limit must be in 1..{audit.MAX_LIMIT}, got {limit}", code="invalid")
    return limit


class AuditApi(APIView):
    @extend_schema(parameters=[OpenApiParameter("format", str, enum=["json", "csv"]),
                               OpenApiParameter("since", str), OpenApiParameter("limit", int)],
                   responses={(200, "application/json"): OpenApiTypes.OBJECT, (200, "text/csv"): OpenApiTypes.STR})
    def get(self, request: Request, volume_id: int) -> Any:
        """Who did what, when, on which layer: strokes and review actions, oldest first (JSON or CSV)."""
        volume, _ = volume_for_user(request.user, volume_id)
        fmt = request.query_params.get("format", "json")
        if fmt not in ("json", "csv"):
            raise ApplicationError(f"format {fmt!r} is not json or csv", code="invalid")
        rows = audit.audit_trail(volume, since=_since(request.query_params.get("since")),
                                 limit=_limit(request.query_params.get("limit")))
        if fmt == "csv":
            response = HttpResponse(audit.audit_csv(rows), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="audit-volume-{volume.pk}.csv"'
            return response
        return Response({"results": audit.audit_json(rows)})

    # DRF would answer ?format=csv itself (content negotiation) and 404 it; the trail picks the format.
    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        return super().perform_content_negotiation(request, force=True)


# ---------------------------------------------------------------- notifications
class ReadInput(serializers.Serializer):
    ids = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), required=False,
                                max_length=1000)
    all = serializers.BooleanField(default=False)


class NotificationListApi(APIView):
    @extend_schema(parameters=[OpenApiParameter("unread", bool)], responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        """The logged-in user's own notifications, newest first, and how many are unread."""
        return Response(notifications.notifications_for(request.user, unread_only=_flag(request, "unread")))


class NotificationReadApi(APIView):
    @extend_schema(request=ReadInput, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request) -> Response:
        data = ReadInput(data=request.data)
        data.is_valid(raise_exception=True)
        changed = notifications.notifications_mark_read(request.user, ids=data.validated_data.get("ids"),
                                                        all_=data.validated_data["all"])
        return Response({"marked": changed, "unread": notifications.notifications_for(request.user)["unread"]})
