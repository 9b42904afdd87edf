from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from annotations.reviews.page_urls import page_urlpatterns as review_pages
from annotations.reviews.urls import api_urlpatterns as review_api
from annotations.urls import api_urlpatterns as annotation_api
from annotations.urls import page_urlpatterns
from emportal.jobs.urls import api_urlpatterns as jobs_api
from emportal.login import RateLimitedLoginView
from emportal.tokens import urls as token_urls
from segmentation.cells import urls as cells_urls
from segmentation.modelloop import urls as modelloop_urls
from segmentation.reports import urls as reports_urls

urlpatterns = [
    path("accounts/login/", RateLimitedLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
    path("api/", include(annotation_api + jobs_api)),
    path("api/", include(reports_urls.api_urlpatterns)),
    path("api/", include(modelloop_urls.api_urlpatterns + cells_urls.api_urlpatterns)),
    path("api/", include(review_api)),
    path("api/", include(token_urls.api_urlpatterns)),
    path("", include(page_urlpatterns)),
    path("", include(reports_urls.page_urlpatterns)),
    path("", include(review_pages)),
    path("", include(token_urls.page_urlpatterns)),
]

handler404 = "emportal.errors.not_found"
