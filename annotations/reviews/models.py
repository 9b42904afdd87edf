"""Rows of team review: assignments and their items, pinned comments, the audit trail, notifications.

They belong to the `reviews` app; the tables keep the names they had when these rows were
part of `annotations` (``db_table``), so existing databases keep their data.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models

from annotations.models import LabelLayer, Project, Volume


class ReviewAssignment(models.Model):
    """A part of one label layer (slices, cells or the whole volume) to be reviewed and fixed."""

    class Scope(models.TextChoices):
        SLICES = "slices"
        CELLS = "cells"
        VOLUME = "volume"

    class State(models.TextChoices):
        OPEN = "open"
        IN_REVIEW = "in_review"
        CHANGES_REQUESTED = "changes_requested"
        FIXED = "fixed"
        APPROVED = "approved"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="review_assignments")
    volume = models.ForeignKey(Volume, on_delete=models.CASCADE, related_name="review_assignments")
    layer = models.ForeignKey(LabelLayer, on_delete=models.CASCADE, related_name="review_assignments")
    scope = models.CharField(max_length=10, choices=Scope.choices, default=Scope.SLICES)
    z0 = models.PositiveIntegerField(default=0)
    z1 = models.PositiveIntegerField(default=0, help_text="exclusive")
    cells = models.JSONField(default=list, blank=True, help_text="instance ids, scope 'cells'")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                                 related_name="reviews_to_do")
    fixer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                              related_name="reviews_to_fix")
    due = models.DateField(null=True, blank=True)
    note = models.TextField(blank=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.OPEN)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                                   related_name="reviews_created")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "annotations_reviewassignment"
        ordering = ["-id"]
        indexes = [models.Index(fields=["project", "state"])]

    def __str__(self) -> str:
        return f"review {self.pk} of {self.layer} ({self.state})"


class ReviewItem(models.Model):
    """One slice or one cell of an assignment, with its decision."""

    class Kind(models.TextChoices):
        SLICE = "slice"
        CELL = "cell"

    class State(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        CHANGES_REQUESTED = "changes_requested"
        FIXED = "fixed"

    assignment = models.ForeignKey(ReviewAssignment, on_delete=models.CASCADE, related_name="items")
    kind = models.CharField(max_length=5, choices=Kind.choices)
    key = models.PositiveBigIntegerField(help_text="z of a slice or id of a cell")
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "annotations_reviewitem"
        ordering = ["assignment", "kind", "key"]
        constraints = [models.UniqueConstraint(fields=["assignment", "kind", "key"], name="one_item_per_key")]


class Comment(models.Model):
    """A remark pinned at voxel (z, y, x); replies point at their root through `parent`."""

    volume = models.ForeignKey(Volume, on_delete=models.CASCADE, related_name="comments")
    layer = models.ForeignKey(LabelLayer, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    assignment = models.ForeignKey(ReviewAssignment, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="comments")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="replies")
    z = models.PositiveIntegerField()
    y = models.PositiveIntegerField()
    x = models.PositiveIntegerField()
    text = models.TextField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(auto_now_add=True)
    resolved = models.BooleanField(default=False)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "annotations_comment"
        ordering = ["id"]
        indexes = [models.Index(fields=["volume", "resolved"])]


class AuditEvent(models.Model):
    """One review or annotation action other than a stroke (strokes are their own log)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="audit_events")
    volume = models.ForeignKey(Volume, null=True, blank=True, on_delete=models.CASCADE, related_name="audit_events")
    layer = models.CharField(max_length=50, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    action = models.CharField(max_length=50)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "annotations_auditevent"
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["volume", "at"])]


class Notification(models.Model):
    class Kind(models.TextChoices):
        ASSIGNED = "assigned"
        CHANGES_REQUESTED = "changes_requested"
        APPROVED = "approved"
        FIXED = "fixed"
        COMMENT = "comment"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    text = models.CharField(max_length=500)
    link = models.CharField(max_length=500, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    read = models.BooleanField(default=False)

    class Meta:
        db_table = "annotations_notification"
        ordering = ["-id"]
        indexes = [models.Index(fields=["user", "read"])]
