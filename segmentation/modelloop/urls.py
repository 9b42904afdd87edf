"""URLs of the model loop (included under /api/ by emportal/urls.py)."""
from django.urls import path

from segmentation.modelloop import api

api_urlpatterns = [
    path("projects/<int:project_id>/models/", api.ModelListApi.as_view(), name="api-models"),
    path("models/<int:model_id>/", api.ModelDetailApi.as_view(), name="api-model"),
    path("models/<int:model_id>/activate/", api.ModelActivateApi.as_view(), name="api-model-activate"),
    path("models/<int:model_id>/compare/<int:other_id>/", api.ModelCompareApi.as_view(), name="api-model-compare"),
    path("models/<int:model_id>/model.pt", api.ModelDownloadApi.as_view(fmt="pt"), name="api-model-download"),
    path("models/<int:model_id>/model.onnx", api.ModelDownloadApi.as_view(fmt="onnx"), name="api-model-onnx"),
    path("projects/<int:project_id>/models/import/", api.ModelImportApi.as_view(), name="api-model-import"),
    path("volumes/<int:volume_id>/retrain/", api.RetrainApi.as_view(), name="api-retrain"),
    path("projects/<int:project_id>/pretrain/", api.PretrainApi.as_view(), name="api-pretrain"),
    path("volumes/<int:volume_id>/segment/", api.SegmentApi.as_view(), name="api-segment"),
    path("volumes/<int:volume_id>/suggestions/", api.SuggestionListApi.as_view(), name="api-suggestions"),
    path("runs/<int:run_id>/suggestions/<int:index>/dismiss/", api.SuggestionDismissApi.as_view(),
         name="api-suggestion-dismiss"),
    path("volumes/<int:volume_id>/thumbnail.png", api.ThumbnailApi.as_view(), name="api-thumbnail"),
    path("volumes/<int:volume_id>/accept-prediction/", api.AcceptPredictionApi.as_view(),
         name="api-accept-prediction"),
]
