"""Turns a DomainError that escapes a page view into a proper answer instead of a 500."""

from __future__ import annotations

from django.shortcuts import render

from pumasi.core.api import problem_response
from pumasi.core.errors import DomainError


class DomainErrorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, DomainError):
            return None
        if request.path.startswith("/api/"):
            return problem_response(exception.status, exception.message, code=exception.code,
                                    errors=exception.field_errors or None)
        template = "404.html" if exception.status == 404 else "error.html"
        return render(request, template, {"error": exception}, status=exception.status)
