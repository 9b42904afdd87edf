"""Routes of the reports feature; emportal/urls.py includes both lists."""
from django.urls import path

from segmentation.reports import api, views

page_urlpatterns = [
    path("volumes/<int:volume_id>/results/", views.volume_results_page, name="volume-results"),
    path("projects/<int:project_id>/results/", views.project_results_page, name="project-results"),
    path("reports/<int:report_id>/cells/<int:cell_id>/3d/", views.cell_3d_page, name="report-cell-3d"),
]

api_urlpatterns = [
    path("volumes/<int:volume_id>/reports/", api.VolumeReportsApi.as_view(), name="api-volume-reports"),
    path("projects/<int:project_id>/reports/", api.ProjectReportsApi.as_view(), name="api-project-reports"),
    path("reports/<int:report_id>/", api.ReportDetailApi.as_view(), name="api-report"),
    path("reports/<int:report_id>/cells/", api.ReportCellsApi.as_view(), name="api-report-cells"),
    path("reports/<int:report_id>/download/<str:fmt>/", api.ReportDownloadApi.as_view(), name="api-report-download"),
    path("reports/<int:report_id>/meshes.zip", api.ReportMeshesZipApi.as_view(), name="api-report-meshes"),
    path("reports/<int:report_id>/cells/<int:cell_id>/mesh.glb", api.ReportMeshApi.as_view(),
         name="api-report-cell-mesh"),
    path("reports/<int:report_id>/cells/<int:cell_id>/<slug:part>.ply", api.ReportMeshApi.as_view(),
         {"fmt": "ply"}, name="api-report-cell-ply"),
    path("volumes/<int:volume_id>/layers/<slug:layer>/export.tif", api.LayerTiffApi.as_view(),
         name="api-layer-tiff"),
    path("volumes/<int:volume_id>/layers/<slug:layer>/export.ome.zarr.zip", api.LayerZarrZipApi.as_view(),
         name="api-layer-zarr-zip"),
]
