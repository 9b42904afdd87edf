"""Page routes of the review feature (dashboard, audit trail, notifications)."""
from django.urls import path

from annotations.reviews import pages

page_urlpatterns: list = [
    path("projects/<int:project_id>/reviews/", pages.review_dashboard, name="reviews-dashboard"),
    path("volumes/<int:volume_id>/audit/", pages.volume_audit, name="volume-audit"),
    path("notifications/", pages.notifications_page, name="notifications"),
]
