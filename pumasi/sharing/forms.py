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


DAY_CHOICES = [("Mon", _("Mon")), ("Tue", _("Tue")), ("Wed", _("Wed")), ("Thu", _("Thu")), ("Fri", _("Fri")),
               ("Sat", _("Sat")), ("Sun", _("Sun")), ("Holidays", _("Holidays"))]


class WindowForm(forms.Form):
    """A sharing rule, for the committee (the engine refuses one that contradicts another)."""

    name = forms.CharField(label=_("Name"), max_length=80)
    days = forms.MultipleChoiceField(label=_("Days"), choices=DAY_CHOICES, widget=forms.CheckboxSelectMultiple)
    start_time = forms.TimeField(label=_("From"), widget=forms.TimeInput(attrs={"type": "time"}))
    end_time = forms.TimeField(label=_("Until (earlier than From: past midnight; the same: all day)"),
                               widget=forms.TimeInput(attrs={"type": "time"}))
    audience = forms.ChoiceField(label=_("Who"), choices=[("anyone", _("Anyone, visitors included")),
                                                          ("members", _("Members of the community")),
                                                          ("holders", _("Permit holders of this zone"))])
    fee_per_hour = forms.IntegerField(label=_("Fee per hour"), min_value=0, initial=0)
    max_stay_minutes = forms.IntegerField(label=_("Maximum stay (min, empty: no limit)"), min_value=1,
                                          required=False)
    notice_minutes = forms.IntegerField(label=_("Notice needed (min)"), min_value=0, initial=0)
    resource_kind = forms.ChoiceField(label=_("Applies to"), required=False, choices=[
        ("", _("Every kind of space")), ("parking_space", _("Parking space")), ("desk", _("Desk")),
        ("room", _("Meeting room")), ("tool", _("Tool"))])


class DeviceForm(forms.Form):
    external_id = forms.CharField(label=_("Device id (DevEUI for ChirpStack)"), max_length=64)
    code = forms.ChoiceField(label=_("Space"), required=False)
    interval_seconds = forms.IntegerField(label=_("Reports every (s)"), min_value=10, max_value=86400, initial=300)

    def __init__(self, *args, codes=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["code"].choices = [("", _("No space yet"))] + [(c, c) for c in codes]


class UpkeepForm(forms.Form):
    amount = forms.IntegerField(label=_("Amount"), min_value=1)
    description = forms.CharField(label=_("What was paid for"), max_length=200)
    paid_from = forms.ChoiceField(label=_("Paid from"), choices=[("fund", _("The zone's upkeep fund")),
                                                                ("cash", _("The community's cash"))])
    idempotency_key = forms.CharField(widget=forms.HiddenInput)
