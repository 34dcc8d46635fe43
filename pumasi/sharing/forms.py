"""Forms of the sharing pages: booking a space (member or visitor)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _


class BookingForm(forms.Form):
    code = forms.ChoiceField(label=_("Space"))
    starts_at = forms.DateTimeField(label=_("From"), widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    ends_at = forms.DateTimeField(label=_("Until"), widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))

    def __init__(self, *args, codes=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["code"].choices = [(c, c) for c in codes]


class VisitorBookingForm(BookingForm):
    visitor_name = forms.CharField(label=_("Your name"), max_length=80)
    visitor_phone = forms.CharField(label=_("Phone"), max_length=20, required=False)
    plate = forms.CharField(label=_("Car plate"), max_length=20, required=False)
