"""Forms for people: extra sign-up fields and the profile form."""

from __future__ import annotations

from django import forms
from django.utils import translation
from django.utils.translation import gettext_lazy as _


class SignupExtraForm(forms.Form):
    display_name = forms.CharField(label=_("Display name"), max_length=80, required=False)
    language = forms.ChoiceField(label=_("Language"), choices=[("ko", "한국어"), ("en", "English")], required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Preselect the language the page is shown in (the browser's), not simply the first choice.
        self.fields["language"].initial = translation.get_language() if translation.get_language() in {"ko", "en"} else "ko"

    def signup(self, request, user):
        """allauth calls this after the user is saved; the adapter already stored our fields."""


class ProfileForm(forms.Form):
    display_name = forms.CharField(label=_("Display name"), max_length=80, required=False)
    language = forms.ChoiceField(label=_("Language"), choices=[("ko", "한국어"), ("en", "English")])
    avatar = forms.FileField(label=_("Avatar"), required=False, help_text=_("JPEG, PNG, WebP or GIF, at most 5 MB."))
