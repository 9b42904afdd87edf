"""Per-cell feature reports."""
from __future__ import annotations

from django.db import models


class FeatureReport(models.Model):
    """One run of the feature extraction over a volume's label and cell layers."""

    volume = models.ForeignKey("annotations.Volume", on_delete=models.CASCADE, related_name="feature_reports")
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL)
    labels_layer = models.CharField(max_length=50, help_text="layer holding organelle classes")
    cells_layer = models.CharField(max_length=50, help_text="layer holding cell instance ids")
    classes = models.JSONField(default=dict, help_text="{feature class name: layer value} used")
    files = models.JSONField(default=dict, help_text="{format: path relative to MEDIA_ROOT}")
    n_cells = models.PositiveIntegerField(default=0)
    summary = models.JSONField(default=dict)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]
