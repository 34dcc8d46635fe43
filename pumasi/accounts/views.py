"""Profile and language pages."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from pumasi.accounts import services
from pumasi.accounts.forms import ProfileForm
from pumasi.core.errors import DomainError
from pumasi.core.forms import add_domain_error


@login_required
def profile(request):
    user = request.user
    if request.method == "POST":
        form = ProfileForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                # Name, language and avatar change together or not at all.
                with transaction.atomic():
                    services.update_profile(
                        user=user, display_name=form.cleaned_data["display_name"], language=form.cleaned_data["language"]
                    )
                    if form.cleaned_data.get("avatar"):
                        services.set_avatar(user=user, upload=form.cleaned_data["avatar"])
            except DomainError as error:
                user.refresh_from_db()
                add_domain_error(form, error)
            else:
                # Say it in the language just chosen: the next page is shown in it.
                with translation.override(user.language or request.LANGUAGE_CODE):
                    messages.success(request, _("Your profile was saved."))
                response = HttpResponseRedirect(request.path)
                response.set_cookie("pumasi_language", user.language, max_age=365 * 86400, samesite="Lax")
                return response
    else:
        form = ProfileForm(initial={"display_name": user.display_name, "language": user.language or request.LANGUAGE_CODE})
    return render(request, "accounts/profile.html", {"form": form})


@require_POST
def set_language(request):
    language = request.POST.get("language")
    next_url = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = "/"
    response = HttpResponseRedirect(next_url)
    if language in {"ko", "en"}:
        response.set_cookie("pumasi_language", language, max_age=365 * 86400, samesite="Lax")
        if request.user.is_authenticated:
            services.update_profile(user=request.user, language=language)
    return response
