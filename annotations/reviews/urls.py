"""REST routes of the review feature (mounted under /api/)."""
from django.urls import path

import annotations.urls  # noqa: F401  (registers the axis converter the tile route uses)
from annotations.reviews import api

TILE = "<axis:axis>/<int:index>/<int:level>/<int:ty>/<int:tx>.png"

api_urlpatterns: list = [
    path("projects/<int:project_id>/reviews/", api.ReviewListApi.as_view(), name="api-reviews"),
    path("projects/<int:project_id>/reviews/summary/", api.ReviewSummaryApi.as_view(), name="api-reviews-summary"),
    path("reviews/<int:review_id>/", api.ReviewDetailApi.as_view(), name="api-review"),
    path("reviews/<int:review_id>/transition/", api.ReviewTransitionApi.as_view(), name="api-review-transition"),
    path("reviews/<int:review_id>/items/", api.ReviewItemApi.as_view(), name="api-review-items"),
    path("volumes/<int:volume_id>/comments/", api.VolumeCommentsApi.as_view(), name="api-volume-comments"),
    path("comments/<int:comment_id>/resolve/", api.CommentResolveApi.as_view(), name="api-comment-resolve"),
    path("comments/<int:comment_id>/reopen/", api.CommentResolveApi.as_view(resolved=False),
         name="api-comment-reopen"),
    path("volumes/<int:volume_id>/diff/", api.DiffApi.as_view(), name="api-volume-diff"),
    path(f"volumes/<int:volume_id>/diff/tiles/{TILE}", api.diff_tile, name="api-volume-diff-tile"),
    path("volumes/<int:volume_id>/audit/", api.AuditApi.as_view(), name="api-volume-audit"),
    path("notifications/", api.NotificationListApi.as_view(), name="api-notifications"),
    path("notifications/read/", api.NotificationReadApi.as_view(), name="api-notifications-read"),
]
