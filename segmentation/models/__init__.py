"""Models of the segmentation app, one module per concern."""
from segmentation.models.jobs import Job
from segmentation.models.reports import FeatureReport
from segmentation.models.training import ModelVersion, SegmentationRun

__all__ = ["FeatureReport", "Job", "ModelVersion", "SegmentationRun"]
