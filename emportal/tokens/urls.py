"""Routes of the tokens feature; emportal/urls.py includes both lists."""
from django.urls import path

from emportal.tokens import api, views

page_urlpatterns = [
    path("account/", views.account_page, name="account"),
]

api_urlpatterns = [
    path("tokens/", api.TokenListApi.as_view(), name="api-tokens"),
    path("tokens/<int:token_id>/", api.TokenDetailApi.as_view(), name="api-token"),
]
