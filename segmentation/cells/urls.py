"""URLs of the cells job (included under /api/ by emportal/urls.py)."""
from django.urls import path

from segmentation.cells import api

api_urlpatterns = [
    path("volumes/<int:volume_id>/cells/", api.CellsApi.as_view(), name="api-cells"),
]
