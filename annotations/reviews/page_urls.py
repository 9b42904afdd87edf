"""Page routes of the review feature (dashboard, audit trail, notifications)."""
from django.urls import path  # noqa: F401

page_urlpatterns: list = []
