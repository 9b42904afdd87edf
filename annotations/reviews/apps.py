from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    """Team review, an app of its own that depends on annotations and never the other way round.

    Its tables keep the names they had under annotations (``db_table``), so moving the app
    moved no rows.
    """

    name = "annotations.reviews"
    label = "reviews"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from annotations.reviews.audit import audit_received
        from annotations.signals import audit_event

        audit_event.connect(audit_received, dispatch_uid="reviews.audit")
