"""Top-level URLs: health, the API, language switching, the UI."""

from django.conf import settings
from django.http import JsonResponse
from django.urls import include, path, re_path
from django.views.decorators.cache import never_cache
from django.views.static import serve as serve_file

from onestop import __version__
from onestop.config.api import api
from onestop.core import health
from onestop.core.api_base import problem_response
from onestop.monitoring.agent_api import agent_api


@never_cache
def healthz(request):
    problems = health.problems()
    body = {
        "status": "ok" if not problems else "fail",
        "version": __version__,
        "checks": {
            "database": problems.get("database", "ok"),
            "queue": problems.get("queue", "ok"),
        },
    }
    return JsonResponse(body, status=200 if not problems else 503)


def api_not_found(request, rest=""):
    return problem_response(404, "No such API path.", code="not-found")


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("api/v1/", api.urls),
    path("api/agent/v1/", agent_api.urls),
    re_path(r"^api/(?P<rest>.*)$", api_not_found),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("onestop.core.urls")),
    path("", include("onestop.contracts.urls")),
    path("", include("onestop.servicedesk.urls")),
    path("", include("onestop.notify.urls")),
    path("", include("onestop.monitoring.urls")),
]

if settings.DEBUG:
    urlpatterns.append(
        re_path(r"^files/(?P<path>.*)$", serve_file, {"document_root": settings.MEDIA_ROOT})
    )
