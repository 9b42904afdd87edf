from django.apps import AppConfig


class SegmentationConfig(AppConfig):
    name = "segmentation"
    default_auto_field = "django.db.models.BigAutoField"
