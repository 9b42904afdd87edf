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
from annotations.layers import class_colors
from annotations.models import LabelLayer, Role
from annotations.reviews import assignments, audit, comments, diff, notifications, outputs
from annotations.reviews.models import Comment, ReviewAssignment
from emportal.errors import ApplicationError, error_response
from emportal.query_params import query_bool, query_choice, query_int
from emportal.schema import ErrorOutput, with_errors


def _bool_param(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, bool, description=description + " (true or false; default false)")


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
    @extend_schema(parameters=[OpenApiParameter("state", str, enum=ReviewAssignment.State.values,
                                                description="only assignments in this state"),
                               OpenApiParameter("volume", int, description="only assignments of this volume id"),
                               _bool_param("mine", "only those where I am the reviewer or the fixer")],
                   responses=with_errors(outputs.AssignmentListOutput, 400))
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = project_for_user(request.user, project_id)
        q = request.query_params
        rows = assignments.assignments_list(project, request.user,
                                            state=query_choice(q, "state", ReviewAssignment.State.values, None),
                                            volume=query_int(q, "volume", None), mine=query_bool(q, "mine"))
        return Response({"results": rows})

    @extend_schema(request=AssignmentInput, responses={201: outputs.AssignmentDetailOutput})
    def post(self, request: Request, project_id: int) -> Response:
        """Create a review assignment (managers)."""
        project, _ = project_for_user(request.user, project_id, min_role=Role.MANAGER)
        data = AssignmentInput(data=request.data)
        data.is_valid(raise_exception=True)
        a = assignments.assignment_create(project, request.user, **data.validated_data)
        return Response(assignments.assignment_detail(a), status=status.HTTP_201_CREATED)


class ReviewSummaryApi(APIView):
    @extend_schema(responses=outputs.AssignmentSummaryOutput)
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = project_for_user(request.user, project_id)
        return Response(assignments.assignments_summary(project))


class ReviewDetailApi(APIView):
    @extend_schema(responses=outputs.AssignmentDetailOutput)
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
    @extend_schema(request=TransitionInput, responses=outputs.AssignmentDetailOutput)
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
    @extend_schema(request=ItemInput, responses=outputs.ItemDecidedOutput)
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
    @extend_schema(parameters=[_bool_param("open", "only unresolved threads"),
                               OpenApiParameter("assignment", int, description="only threads of this assignment id")],
                   responses=with_errors(outputs.CommentListOutput, 400))
    def get(self, request: Request, volume_id: int) -> Response:
        volume, _ = volume_for_user(request.user, volume_id)
        q = request.query_params
        return Response({"results": comments.comments_list(volume, open_only=query_bool(q, "open"),
                                                           assignment=query_int(q, "assignment", None))})

    @extend_schema(request=CommentInput, responses={201: outputs.CommentOutput})
    def post(self, request: Request, volume_id: int) -> Response:
        volume, role = volume_for_user(request.user, volume_id, min_role=Role.ANNOTATOR)
        data = CommentInput(data=request.data)
        data.is_valid(raise_exception=True)
        c = comments.comment_add(volume, request.user, role, **data.validated_data)
        return Response(comments.comment_payload(c), status=status.HTTP_201_CREATED)


class CommentResolveApi(APIView):
    resolved = True

    @extend_schema(request=None, responses=outputs.CommentOutput)
    def post(self, request: Request, comment_id: int) -> Response:
        c = Comment.objects.select_related("volume", "layer", "author").filter(pk=comment_id).first()
        if c is None:
            raise Http404("not found")
        _, role = volume_for_user(request.user, c.volume_id, min_role=Role.ANNOTATOR)
        c = comments.comment_set_resolved(c, request.user, role, resolved=self.resolved)
        return Response(comments.comment_payload(c))


# ---------------------------------------------------------------- diff
DIFF_LAYER_PARAMETERS = [OpenApiParameter("a", str, required=True, description="name of a label layer"),
                         OpenApiParameter("b", str, required=True, description="another layer of the same kind")]


class DiffApi(APIView):
    @extend_schema(parameters=DIFF_LAYER_PARAMETERS + [
                       OpenApiParameter("z0", int, description="first slice compared (default 0)"),
                       OpenApiParameter("z1", int, description="slice after the last compared (default: all)")],
                   responses=with_errors(outputs.LayerDiffOutput, 400))
    def get(self, request: Request, volume_id: int) -> Response:
        """Disagreement and Dice per class (and per cell) between layers a and b, where both are labeled."""
        volume, _ = volume_for_user(request.user, volume_id)
        q = request.query_params
        return Response(diff.layers_diff(volume, q.get("a"), q.get("b"), z0=query_int(q, "z0", None),
                                         z1=query_int(q, "z1", None)))


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
        colors = class_colors(volume["project_id"])
        return diff.render_diff_tile(volume, layer_a, layer_b, axis=axis, index=index, level=level, ty=ty, tx=tx,
                                     colors=colors)

    return tile_views.tile_response(request, etag, render, "png", "private, no-cache")


class _LayersOnly:
    """The bit of a Volume that diff_layers_of reads, without loading the volume row again."""

    def __init__(self, layers: Any, volume_id: int) -> None:
        self.layers, self.name = layers, f"volume {volume_id}"


# ---------------------------------------------------------------- audit trail
AUDIT_DEFAULT_LIMIT = 1000


def _since(value: Any) -> dt.datetime | None:
    if value in (None, ""):
        return None
    try:
        when = dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise ApplicationError(f"since {value!r} is not an ISO date or date-time", code="bad_date",
                               detail={"parameter": "since"}) from None
    return timezone.make_aware(when) if timezone.is_naive(when) else when


class AuditApi(APIView):
    @extend_schema(parameters=[OpenApiParameter("format", str, enum=["json", "csv"], default="json"),
                               OpenApiParameter("since", str, description="only rows at or after this ISO 8601 date "
                                                "or date-time (e.g. 2026-03-01 or 2026-03-01T09:30:00+01:00)"),
                               OpenApiParameter("limit", int, description=f"at most this many rows, "
                                                f"1..{audit.MAX_LIMIT} (default {AUDIT_DEFAULT_LIMIT})")],
                   responses={(200, "application/json"): outputs.AuditTrailOutput, (200, "text/csv"): OpenApiTypes.STR,
                              (400, "application/json"): ErrorOutput})
    def get(self, request: Request, volume_id: int) -> Any:
        """Who did what, when, on which layer: strokes and review actions, oldest first (JSON or CSV)."""
        volume, _ = volume_for_user(request.user, volume_id)
        q = request.query_params
        fmt = query_choice(q, "format", ("json", "csv"), "json")
        rows = audit.audit_trail(volume, since=_since(q.get("since")),
                                 limit=query_int(q, "limit", AUDIT_DEFAULT_LIMIT, minimum=1, maximum=audit.MAX_LIMIT))
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
    @extend_schema(parameters=[_bool_param("unread", "only unread notifications")],
                   responses=with_errors(outputs.NotificationListOutput, 400))
    def get(self, request: Request) -> Response:
        """The logged-in user's own notifications, newest first, and how many are unread."""
        unread_only = query_bool(request.query_params, "unread")
        return Response(notifications.notifications_for(request.user, unread_only=unread_only))


class NotificationReadApi(APIView):
    @extend_schema(request=ReadInput, responses=outputs.NotificationsReadOutput)
    def post(self, request: Request) -> Response:
        data = ReadInput(data=request.data)
        data.is_valid(raise_exception=True)
        changed = notifications.notifications_mark_read(request.user, ids=data.validated_data.get("ids"),
                                                        all_=data.validated_data["all"])
        return Response({"marked": changed, "unread": notifications.notifications_for(request.user)["unread"]})
