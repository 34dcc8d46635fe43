"""Token pages: create (secret shown once), list, revoke."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from pumasi.core.errors import DomainError
from pumasi.core.forms import add_domain_error
from pumasi.platform import selectors, services


class TokenForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100)
    scopes = forms.MultipleChoiceField(
        label=gettext_lazy("Scopes"), widget=forms.CheckboxSelectMultiple,
        choices=[(k, f"{k} — {v}") for k, v in services.TOKEN_SCOPES.items()],
    )
    expires_at = forms.DateTimeField(label=gettext_lazy("Expires"), required=False,
                                     widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))


@login_required
def tokens(request):
    form = TokenForm(request.POST or None)
    secret = None
    if request.method == "POST" and form.is_valid():
        try:
            _token, secret = services.create_api_token(user=request.user, **form.cleaned_data)
        except DomainError as error:
            add_domain_error(form, error)
        else:
            form = TokenForm()
    return render(request, "platform/tokens.html", {"form": form, "secret": secret, "tokens": selectors.tokens_of(request.user)})


@login_required
@require_POST
def revoke_token(request, token_id: int):
    try:
        services.revoke_api_token(user=request.user, token_id=token_id)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("The token was revoked."))
    return redirect("platform:tokens")
