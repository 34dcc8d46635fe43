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


class OrganiserMfaMiddleware:
    """Sends an organiser of a community that demands two-factor sign-in to set up TOTP first.

    Only pages are gated: the account and two-factor pages themselves stay open, and API calls
    use tokens, which are only created from a (gated) browser session.
    """

    EXEMPT_PREFIXES = ("/accounts/", "/static/", "/media/", "/api/", "/healthz", "/readyz", "/events/",
                       "/notifications/unsubscribe/", "/manifest.webmanifest", "/sw.js")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (user is not None and user.is_authenticated and not request.path.startswith(self.EXEMPT_PREFIXES)
                and needs_mfa_setup(user)):
            from django.contrib import messages
            from django.shortcuts import redirect
            from django.utils.translation import gettext as _

            messages.warning(request, _("A community you organise requires two-factor sign-in. Set it up to continue."))
            return redirect("mfa_activate_totp")
        return self.get_response(request)


def needs_mfa_setup(user) -> bool:
    from allauth.mfa.models import Authenticator

    from pumasi.platform.models import CommunityPolicy

    organises_strict = CommunityPolicy.objects.filter(
        organisers_need_mfa=True, community__memberships__user=user, community__memberships__role="organiser"
    ).exists()
    if not organises_strict:
        return False
    return not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()
