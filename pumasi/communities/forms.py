"""Forms for communities and invitations."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from pumasi.communities.models import Community, Role


class CommunityForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=120)
    slug = forms.SlugField(label=_("Address"), max_length=60, help_text=_("Lower-case letters, digits and hyphens, e.g. doksan4"))
    kind = forms.ChoiceField(label=_("Kind"), choices=Community.Kind.choices)
    description = forms.CharField(label=_("Description"), widget=forms.Textarea(attrs={"rows": 3}), required=False)
    time_zone = forms.CharField(label=_("Time zone"), initial="Asia/Seoul", max_length=64)
    currency = forms.ChoiceField(label=_("Currency"), choices=[(c, c) for c in ("KRW", "USD", "EUR", "JPY", "CNY", "GBP")])
    open_join = forms.BooleanField(label=_("Anyone signed in may join"), required=False)


class InvitationForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices, initial=Role.MEMBER)
    days_valid = forms.IntegerField(label=_("Valid for (days)"), min_value=1, max_value=90, initial=7)
    max_uses = forms.IntegerField(label=_("Maximum uses"), min_value=1, max_value=10000, required=False,
                                  help_text=_("Leave empty for no limit."))


class RoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices)
