from django.apps import AppConfig


class SegmentationConfig(AppConfig):
    name = "segmentation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from annotations.signals import volume_voxel_size_changed
        from segmentation.job_kinds import job_kinds_register
        from segmentation.reports.services import reports_recompute_after_voxel_size_change

        job_kinds_register()
        volume_voxel_size_changed.connect(reports_recompute_after_voxel_size_change,
                                          dispatch_uid="segmentation.reports.voxel_size")
