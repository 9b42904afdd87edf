"""REST routes of the review feature (mounted under /api/)."""
from django.urls import path  # noqa: F401

api_urlpatterns: list = []
