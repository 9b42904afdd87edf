"""Trained models and the segmentations they produced."""
from __future__ import annotations

from django.conf import settings
from django.db import models


class ModelVersion(models.Model):
    """A trained ResUNet: its weights file, what it knows, what it was trained on, how well it did."""

    project = models.ForeignKey("annotations.Project", on_delete=models.CASCADE, related_name="model_versions")
    volume = models.ForeignKey("annotations.Volume", null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="model_versions", help_text="the volume whose labels trained it")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children",
                               help_text="the version it was fine-tuned from")
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL)
    weights = models.CharField(max_length=500, help_text="weights file, relative to MEDIA_ROOT")
    classes = models.JSONField(default=dict, help_text="{name: value} of the label classes it predicts")
    hierarchy = models.JSONField(default=dict, help_text="{class: parent class or null}")
    labels_hash = models.CharField(max_length=64, blank=True, help_text="sha256 of the labels it was trained on")
    labeled_voxels = models.BigIntegerField(default=0)
    curve = models.JSONField(default=list, help_text="[{step, loss, val_dice}] during training")
    val_dice = models.JSONField(default=dict, help_text="{class: dice} on held-out labeled slices")
    config = models.JSONField(default=dict)
    active = models.BooleanField(default=False, help_text="the version Segment uses and Retrain fine-tunes")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"model v{self.pk} of {self.project}"


class SegmentationRun(models.Model):
    """One prediction of a volume by a model version, written into a label layer."""

    volume = models.ForeignKey("annotations.Volume", on_delete=models.CASCADE, related_name="segmentation_runs")
    model_version = models.ForeignKey(ModelVersion, null=True, on_delete=models.SET_NULL, related_name="runs")
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL)
    layer = models.CharField(max_length=50, default="prediction")
    outputs = models.JSONField(default=dict, help_text="stage timings, suggestions, statistics")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]
