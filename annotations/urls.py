from django.urls import path, register_converter

from annotations import api, api_label_import, store_http, tiles, views


class AxisConverter:
    regex = "[zyx]"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class FormatConverter:
    regex = "png|webp"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(AxisConverter, "axis")
register_converter(FormatConverter, "fmt")

TILE = "<axis:axis>/<int:index>/<int:level>/<int:ty>/<int:tx>.<fmt:fmt>"

page_urlpatterns = [
    path("", views.home, name="home"),
    path("projects/<int:project_id>/", views.project_page, name="project"),
    path("projects/<int:project_id>/jobs/", views.jobs_page, name="jobs"),
    path("volumes/<int:volume_id>/", views.volume_page, name="volume"),
    path("stores/<str:token>/<path:path>", store_http.signed_store_file, name="store-signed"),
]

api_urlpatterns = [
    path("projects/", api.ProjectListApi.as_view(), name="api-projects"),
    path("projects/<int:project_id>/members/", api.ProjectMembersApi.as_view(), name="api-members"),
    path("projects/<int:project_id>/members/<str:username>/", api.ProjectMemberApi.as_view(), name="api-member"),
    path("projects/<int:project_id>/classes/", api.LabelClassListApi.as_view(), name="api-classes"),
    path("projects/<int:project_id>/classes/<int:class_id>/", api.LabelClassDetailApi.as_view(), name="api-class"),
    path("projects/<int:project_id>/volumes/", api.VolumeListApi.as_view(), name="api-volumes"),
    path("projects/<int:project_id>/volumes/import-path/", api.VolumeImportPathApi.as_view(),
         name="api-volume-import-path"),
    path("volumes/<int:volume_id>/", api.VolumeDetailApi.as_view(), name="api-volume"),
    path("volumes/<int:volume_id>/voxel-size/", api.VolumeVoxelSizeApi.as_view(), name="api-volume-voxel-size"),
    path("volumes/<int:volume_id>/strokes/", api.StrokeListApi.as_view(), name="api-strokes"),
    path("volumes/<int:volume_id>/strokes/<str:uuid>/undo/", api.StrokeUndoApi.as_view(), name="api-stroke-undo"),
    path("volumes/<int:volume_id>/strokes/<str:uuid>/redo/", api.StrokeUndoApi.as_view(redo=True),
         name="api-stroke-redo"),
    path("volumes/<int:volume_id>/labels/import/", api_label_import.LabelImportApi.as_view(), name="api-label-import"),
    path("volumes/<int:volume_id>/complete-slices/", api.CompleteSliceApi.as_view(), name="api-complete-slices"),
    path("volumes/<int:volume_id>/layers/<slug:layer>/value/", api.LayerValueApi.as_view(), name="api-layer-value"),
    path("volumes/<int:volume_id>/layers/<slug:layer>/mesh.glb", api.LayerMeshApi.as_view(), name="api-layer-mesh"),
    path(f"volumes/<int:volume_id>/tiles/{TILE}", tiles.image_tile, name="api-tile"),
    path(f"volumes/<int:volume_id>/layers/<slug:layer>/tiles/{TILE}", tiles.label_tile, name="api-label-tile"),
    path("volumes/<int:volume_id>/store-link/", store_http.StoreLinkApi.as_view(), name="api-volume-store-link"),
    path("volumes/<int:volume_id>/store/<path:path>", store_http.volume_store_file, name="api-volume-store"),
]
