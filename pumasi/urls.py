"""URL map: pages, the API at /api/v1, accounts (allauth), health probes."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve

from pumasi import health
from pumasi.api import api
from pumasi.platform.views import ConsentView

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("api/v1/", api.urls),
    path("accounts/", include("pumasi.accounts.urls")),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("o/authorize/", ConsentView.as_view(), name="oidc_consent"),
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
    path("", include("pumasi.platform.urls")),
    path("", include("pumasi.ledger.urls")),
    path("", include("pumasi.sharing.urls")),
    path("", include("pumasi.cocreation.urls")),
    path("", include("pumasi.market.urls")),
    path("", include("pumasi.governance.urls")),
    path("", include("pumasi.insight.urls")),
    path("", include("pumasi.communities.urls")),
    re_path(r"^media/(?P<path>.*)$", serve, {"document_root": settings.MEDIA_ROOT}),
]

handler404 = "pumasi.health.not_found"
handler500 = "pumasi.health.server_error"
