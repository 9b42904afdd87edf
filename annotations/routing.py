from django.urls import path

from annotations.consumers import ProjectConsumer, VolumeConsumer

websocket_urlpatterns = [
    path("ws/volumes/<int:volume_id>/", VolumeConsumer.as_asgi()),
    path("ws/projects/<int:project_id>/", ProjectConsumer.as_asgi()),
]
