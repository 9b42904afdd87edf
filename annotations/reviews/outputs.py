"""The answers of the review API as serializers, so the OpenAPI schema states every field.

Each one describes what a payload function of this app returns (named in its docstring);
tests/annotations/reviews/test_outputs.py checks real payloads against the schema.
"""
from __future__ import annotations

from rest_framework import serializers

from annotations.models import LabelLayer
from annotations.reviews.models import Notification, ReviewAssignment, ReviewItem


class ProgressOutput(serializers.Serializer):
    """How many items of an assignment are in each state, and in all."""

    pending = serializers.IntegerField()
    approved = serializers.IntegerField()
    changes_requested = serializers.IntegerField()
    fixed = serializers.IntegerField()
    total = serializers.IntegerField()


class AssignmentOutput(serializers.Serializer):
    """`assignments.assignment_payload`: one review assignment, without its items."""

    id = serializers.IntegerField()
    project = serializers.IntegerField()
    volume = serializers.IntegerField()
    volume_name = serializers.CharField()
    layer = serializers.CharField()
    layer_kind = serializers.ChoiceField(choices=LabelLayer.Kind.choices)
    scope = serializers.ChoiceField(choices=ReviewAssignment.Scope.choices)
    z0 = serializers.IntegerField()
    z1 = serializers.IntegerField(help_text="exclusive")
    cells = serializers.ListField(child=serializers.IntegerField(), help_text="instance ids, scope 'cells'")
    reviewer = serializers.CharField(allow_null=True)
    fixer = serializers.CharField(allow_null=True)
    due = serializers.DateField(allow_null=True)
    note = serializers.CharField(allow_blank=True)
    state = serializers.ChoiceField(choices=ReviewAssignment.State.choices)
    created_by = serializers.CharField(allow_null=True)
    created = serializers.DateTimeField()
    updated = serializers.DateTimeField()
    overdue = serializers.BooleanField()
    progress = ProgressOutput()
    url = serializers.CharField(help_text="the page that opens the volume at this assignment")


class ReviewItemDecisionOutput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ReviewItem.Kind.choices)
    key = serializers.IntegerField(help_text="z of a slice or id of a cell")
    state = serializers.ChoiceField(choices=ReviewItem.State.choices)
    decided_by = serializers.CharField(allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)


class ReviewItemOutput(ReviewItemDecisionOutput):
    center = serializers.ListField(child=serializers.IntegerField(), allow_null=True, min_length=3, max_length=3,
                                   help_text="[z, y, x] to look at; null for a cell that is gone")


class AuditRowOutput(serializers.Serializer):
    """One row of a volume's audit trail (`audit.audit_json`) or of an assignment's history."""

    at = serializers.DateTimeField()
    actor = serializers.CharField(allow_null=True)
    action = serializers.CharField(help_text="stroke, undo, redo, review_<transition>, label_import, ...")
    layer = serializers.CharField(allow_blank=True)
    detail = serializers.DictField(help_text="what the action was about; its keys depend on the action")


class AssignmentDetailOutput(AssignmentOutput):
    """`assignments.assignment_detail`: the assignment, its items and its history."""

    items = ReviewItemOutput(many=True)
    history = AuditRowOutput(many=True)


class AssignmentListOutput(serializers.Serializer):
    results = AssignmentOutput(many=True)


class PersonWorkOutput(serializers.Serializer):
    user = serializers.CharField()
    reviewing = serializers.IntegerField()
    fixing = serializers.IntegerField()
    overdue = serializers.IntegerField()


class AssignmentSummaryOutput(serializers.Serializer):
    """`assignments.assignments_summary`."""

    by_state = serializers.DictField(child=serializers.IntegerField(), help_text="{state: assignments}")
    by_person = PersonWorkOutput(many=True, help_text="open work per person")
    overdue = AssignmentOutput(many=True)


class ItemDecidedOutput(serializers.Serializer):
    item = ReviewItemDecisionOutput()
    assignment = AssignmentOutput()


class CommentOutput(serializers.Serializer):
    """`comments.comment_payload`: a comment pinned at voxel (z, y, x)."""

    id = serializers.IntegerField()
    volume = serializers.IntegerField()
    layer = serializers.CharField(allow_null=True)
    assignment = serializers.IntegerField(allow_null=True)
    parent = serializers.IntegerField(allow_null=True)  # type: ignore[assignment]  # a field, not Field.parent
    z = serializers.IntegerField()
    y = serializers.IntegerField()
    x = serializers.IntegerField()
    text = serializers.CharField(allow_blank=True)
    author = serializers.CharField(allow_null=True)
    created = serializers.DateTimeField()
    resolved = serializers.BooleanField()
    resolved_by = serializers.CharField(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)
    url = serializers.CharField()


class CommentThreadOutput(CommentOutput):
    replies = CommentOutput(many=True)


class CommentListOutput(serializers.Serializer):
    """`comments.comments_list` under "results": root comments, each with its replies."""

    results = CommentThreadOutput(many=True)


class ClassDiffOutput(serializers.Serializer):
    dice = serializers.FloatField()
    a_voxels = serializers.IntegerField()
    b_voxels = serializers.IntegerField()


class CellDiffOutput(serializers.Serializer):
    a = serializers.IntegerField(help_text="cell id in layer a")
    b = serializers.IntegerField(allow_null=True, help_text="best-overlapping cell of layer b, null if none")
    dice = serializers.FloatField()


class SliceDiffOutput(serializers.Serializer):
    z = serializers.IntegerField()
    disagree = serializers.IntegerField(help_text="voxels that differ in this slice")


class LayerDiffOutput(serializers.Serializer):
    """`diff.layers_diff`."""

    a = serializers.CharField()
    b = serializers.CharField()
    kind = serializers.ChoiceField(choices=LabelLayer.Kind.choices)
    z0 = serializers.IntegerField()
    z1 = serializers.IntegerField(help_text="exclusive")
    compared_voxels = serializers.IntegerField()
    disagree_voxels = serializers.IntegerField()
    classes = serializers.DictField(child=ClassDiffOutput(), help_text="{class name: Dice and voxel counts}")
    cells = CellDiffOutput(many=True, help_text="instance layers only; [] for class layers")
    slices = SliceDiffOutput(many=True)


class AuditTrailOutput(serializers.Serializer):
    results = AuditRowOutput(many=True)


class NotificationOutput(serializers.Serializer):
    """`notifications.notification_payload`."""

    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=Notification.Kind.choices)
    text = serializers.CharField()
    link = serializers.CharField(allow_blank=True)
    created = serializers.DateTimeField()
    read = serializers.BooleanField()


class NotificationListOutput(serializers.Serializer):
    """`notifications.notifications_for`: newest first, and how many are unread."""

    results = NotificationOutput(many=True)
    unread = serializers.IntegerField()


class NotificationsReadOutput(serializers.Serializer):
    marked = serializers.IntegerField(help_text="how many this request marked read")
    unread = serializers.IntegerField()
