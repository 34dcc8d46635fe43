"""Activates the person's profile language, else the browser's (Accept-Language), else Korean."""

from __future__ import annotations

from django.utils import translation

SUPPORTED = {"ko", "en"}


class UserLanguageMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        language = None
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.language in SUPPORTED:
            language = user.language
        if language is None and request.COOKIES.get("pumasi_language") in SUPPORTED:
            language = request.COOKIES["pumasi_language"]
        if language is None:
            language = translation.get_language_from_request(request)
            if language not in SUPPORTED:
                language = "ko"
        translation.activate(language)
        request.LANGUAGE_CODE = language
        response = self.get_response(request)
        response.headers.setdefault("Content-Language", language)
        translation.deactivate()
        return response
