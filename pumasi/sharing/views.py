"""Pages of the sharing capability: zone home (spaces, booking, opt-out, violations), the
public live board for the alley entrance, the value page, and a visitor's booking page."""

from __future__ import annotations

import secrets
import time

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_POST

from pumasi.core.errors import DomainError, NotFound
from pumasi.core.forms import add_domain_error
from pumasi.sharing import permissions, selectors, services
from pumasi.sharing.forms import BookingForm, DeviceForm, UpkeepForm, VisitorBookingForm, WindowForm
from pumasi.sharing.models import PolicyWindow, Session

WAIT_SECONDS = 20.0


def _public_zone(request, slug):
    try:
        return selectors.public_zone(request.user, slug)
    except NotFound:
        raise Http404(_("No such zone.")) from None


def zone_home(request, slug: str):
    zone = _public_zone(request, slug)
    member = permissions.can(request.user, "view", zone)
    if not member and not zone.allow_visitors:
        return redirect("sharing:board", slug)
    codes = [r.code for r in selectors.resources(zone) if not r.is_private or r.holder_id == request.user.pk]
    form_class = BookingForm if member else VisitorBookingForm
    context = {
        "zone": zone, "member": member, "board": selectors.board(zone), "codes": codes,
        "form": form_class(codes=codes),
        "rules": zone.windows.order_by("pk"), "rule_objects": selectors.rules_for(zone),
        "may_decide": permissions.can(request.user, "decide", zone),
    }
    if member:
        context["spaces"] = selectors.resources(zone)
        context["mine"] = selectors.bookings_of(request.user).filter(resource__zone=zone)[:20]
        context["violations"] = selectors.open_violations(zone)
    return render(request, "sharing/zone.html", context)


def book(request, slug: str):
    zone = _public_zone(request, slug)
    member = permissions.can(request.user, "view", zone)
    codes = [r.code for r in selectors.resources(zone)]
    form = (BookingForm if member else VisitorBookingForm)(request.POST or None, codes=codes)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            resource = selectors.resource(zone, data.pop("code"))
            booking = services.create_booking(actor=request.user if member else None, resource=resource, **data)
        except DomainError as error:
            add_domain_error(form, error)
        else:
            messages.success(request, _("Booked: %(code)s, fee %(fee)s %(currency)s.") % {
                "code": booking.resource.code, "fee": booking.fee_amount, "currency": booking.currency})
            if booking.user_id is None:
                return redirect("sharing:visitor_booking", booking.reference)
            return redirect("sharing:zone", slug)
    return render(request, "sharing/book.html", {"zone": zone, "form": form, "member": member})


def visitor_booking(request, reference: str):
    try:
        booking = selectors.booking_by_reference(reference)
    except NotFound:
        raise Http404(_("No such booking.")) from None
    if request.method == "POST":
        try:
            services.cancel_booking(actor=None, booking=booking, reference=reference)
        except DomainError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, _("The booking was cancelled."))
        return redirect("sharing:visitor_booking", reference)
    return render(request, "sharing/visitor_booking.html", {"booking": booking, "zone": booking.resource.zone})


@login_required
@require_POST
def toggle_sharing(request, slug: str, code: str):
    zone = selectors.zone_for(request.user, slug)
    resource = selectors.resource(zone, code)
    try:
        services.set_sharing(actor=request.user, resource=resource, shares=request.POST.get("shares") == "1")
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("Saved."))
    return redirect("sharing:zone", slug)


@login_required
@require_POST
def claim(request, slug: str, session_id: int):
    zone = selectors.zone_for(request.user, slug)
    session = Session.objects.select_related("resource__zone__community").filter(
        pk=session_id, resource__zone=zone).first()
    if session is None:
        raise Http404(_("No such session."))
    try:
        services.claim_session(actor=request.user, session=session)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("Recorded as yours."))
    return redirect("sharing:zone", slug)


@login_required
@require_POST
def cancel(request, slug: str, booking_id: int):
    try:
        booking = selectors.booking_for(request.user, booking_id)
        services.cancel_booking(actor=request.user, booking=booking)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("The booking was cancelled."))
    return redirect("sharing:zone", slug)


@login_required
def value(request, slug: str):
    zone = selectors.zone_for(request.user, slug)
    figures = selectors.social_value(zone)
    days = [_("Mon"), _("Tue"), _("Wed"), _("Thu"), _("Fri"), _("Sat"), _("Sun")]
    return render(request, "sharing/value.html", {"zone": zone, "v": figures,
                                                  "heat": list(zip(days, figures["heat"], strict=True)),
                                                  "hours": range(24)})


@never_cache
@xframe_options_sameorigin
def board(request, slug: str):
    zone = _public_zone(request, slug)
    return render(request, "sharing/board.html", {"zone": zone, "b": selectors.board(zone),
                                                  "signed_in": permissions.can(request.user, "view", zone)})


@never_cache
def board_fragment(request, slug: str):
    zone = _public_zone(request, slug)
    return render(request, "sharing/_board.html", {"zone": zone, "b": selectors.board(zone)})


@never_cache
def board_wait(request, slug: str):
    """Long poll: answers as soon as the board changes (or after ~20 s), so the entrance display
    updates within a fraction of a second without an account and on any browser with XHR."""
    zone = _public_zone(request, slug)
    try:
        seen = int(request.GET.get("v", "-1"))
    except ValueError:
        seen = -1
    deadline = time.monotonic() + WAIT_SECONDS
    current = zone.board_version
    while current == seen and time.monotonic() < deadline:
        time.sleep(0.1)
        current = selectors.board_version(zone.pk)
    return JsonResponse({"version": current, "changed": current != seen, "at": timezone.now().isoformat()})


# --- the zone's admin page: upkeep costs, sharing rules, sensors ----------------------------------------

def _manage_page(request, zone, *, window_form=None, device_form=None, upkeep_form=None, new_device=None,
                 status=200):
    from pumasi.ledger import selectors as ledger_selectors

    codes = [r.code for r in selectors.resources(zone)]
    expense, fund = services.upkeep_accounts(zone)
    costs = selectors.upkeep_cost_rows(zone, limit=50)
    context = {
        "zone": zone, "may_manage": permissions.can(request.user, "manage", zone),
        "windows": zone.windows.order_by("pk"), "devices": selectors.devices(zone),
        "window_form": window_form or WindowForm(),
        "device_form": device_form or DeviceForm(codes=codes),
        "upkeep_form": upkeep_form or UpkeepForm(initial={"idempotency_key": secrets.token_urlsafe(16)}),
        "new_device": new_device, "costs": costs, "fund_held": -ledger_selectors.balance_of(fund),
        "costs_total": ledger_selectors.balance_of(expense), "currency": zone.community.currency,
    }
    return render(request, "sharing/manage.html", context, status=status)


@login_required
def manage(request, slug: str):
    zone = selectors.zone_for(request.user, slug, "decide")
    return _manage_page(request, zone)


@login_required
@require_POST
def manage_upkeep(request, slug: str):
    zone = selectors.zone_for(request.user, slug, "decide")
    form = UpkeepForm(request.POST)
    if form.is_valid():
        try:
            services.record_upkeep_cost(actor=request.user, zone=zone, **form.cleaned_data)
        except DomainError as error:
            add_domain_error(form, error)
        else:
            messages.success(request, _("The cost was posted to the ledger."))
            return redirect("sharing:manage", slug)
    return _manage_page(request, zone, upkeep_form=form, status=422)


@login_required
@require_POST
def manage_add_window(request, slug: str):
    zone = selectors.zone_for(request.user, slug, "decide")
    form = WindowForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.add_window(actor=request.user, zone=zone, **data)
        except DomainError as error:
            add_domain_error(form, error)
        else:
            messages.success(request, _("The rule was added."))
            return redirect("sharing:manage", slug)
    return _manage_page(request, zone, window_form=form, status=422)


@login_required
@require_POST
def manage_remove_window(request, slug: str, window_id: int):
    zone = selectors.zone_for(request.user, slug, "decide")
    window = PolicyWindow.objects.filter(pk=window_id, zone=zone).select_related("zone__community").first()
    if window is None:
        raise Http404(_("No such rule."))
    services.remove_window(actor=request.user, window=window)
    messages.success(request, _("The rule was removed."))
    return redirect("sharing:manage", slug)


@login_required
@require_POST
def manage_add_device(request, slug: str):
    zone = selectors.zone_for(request.user, slug, "manage")
    codes = [r.code for r in selectors.resources(zone)]
    form = DeviceForm(request.POST, codes=codes)
    if form.is_valid():
        data = form.cleaned_data
        try:
            resource = selectors.resource(zone, data["code"]) if data["code"] else None
            device, secret = services.register_device(actor=request.user, zone=zone, external_id=data["external_id"],
                                                      resource=resource, interval_seconds=data["interval_seconds"])
        except DomainError as error:
            if "resource" in error.field_errors:  # the service's "resource" is this form's "code"
                error.field_errors["code"] = error.field_errors.pop("resource")
            add_domain_error(form, error)
        else:
            # The secret is shown this once, on this page, never stored in the session or a message.
            return _manage_page(request, zone, new_device={"device": device, "secret": secret})
    return _manage_page(request, zone, device_form=form, status=422)
