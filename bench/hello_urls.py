"""pumasi's URLs plus a bare hello view: the floor the serving benchmark compares against.

Selected only by DJANGO_SETTINGS_MODULE=bench.settings in a benchmark's server process; the
production URLconf never contains it.
"""

from django.http import HttpResponse
from django.urls import include, path


def hello(request):
    return HttpResponse("hello", content_type="text/plain")


urlpatterns = [
    path("bench/hello", hello),
    path("", include("pumasi.urls")),
]

handler404 = "pumasi.health.not_found"
handler500 = "pumasi.health.server_error"
