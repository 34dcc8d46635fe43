"""Liveness and readiness probes, and the site-wide 404/500 answers (problem+json under /api/)."""

from __future__ import annotations

import socket
from urllib.parse import urlparse

from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render

from pumasi.core.api import problem_response


def healthz(request):
    return HttpResponse("ok", content_type="text/plain")


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


def _check_redis() -> str | None:
    try:
        from pumasi.core.events import redis_client

        redis_client().ping()
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


def _check_mqtt() -> str | None:
    parsed = urlparse(settings.MQTT_URL)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 1883), timeout=2):
            return None
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"


def readyz(request):
    checks = {"database": _check_database()}
    if settings.REDIS_URL:
        checks["redis"] = _check_redis()
    if settings.MQTT_URL:
        checks["mqtt"] = _check_mqtt()
    ok = all(problem is None for problem in checks.values())
    body = {"status": "ready" if ok else "not ready", "checks": {k: v or "ok" for k, v in checks.items()}}
    return JsonResponse(body, status=200 if ok else 503)


def not_found(request, exception=None):
    if request.path.startswith("/api/"):
        return problem_response(404, "Not found.", code="not_found")
    return render(request, "404.html", status=404)


def server_error(request):
    if request.path.startswith("/api/"):
        return problem_response(500, "Something went wrong on our side.", code="server_error")
    return HttpResponse("Something went wrong on our side.", status=500, content_type="text/plain; charset=utf-8")
