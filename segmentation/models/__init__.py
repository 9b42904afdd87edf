"""Models of the segmentation app, one module per concern."""
from segmentation.models.reports import FeatureReport
from segmentation.models.training import ModelVersion, SegmentationRun

__all__ = ["FeatureReport", "ModelVersion", "SegmentationRun"]
