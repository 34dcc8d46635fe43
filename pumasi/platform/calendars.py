"""A person's private iCalendar feed of their bookings: the revocable token behind the URL (reads
and the audited rotate/turn-off writes) and the bookings as calendar items."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from pumasi.core.errors import NotFound
from pumasi.platform.feeds import CalendarItem, uid_for
from pumasi.platform.models import CalendarFeed
from pumasi.platform.services import record_audit

PAST_DAYS = 90  # the feed shows what happened in the last three months and everything ahead
ITEM_LIMIT = 1000

# How far a booking has come; the iCalendar SEQUENCE, which must grow with every revision a client
# should take over. Every transition the sharing engine makes goes up this ladder.
_REVISION = {"held": 0, "confirmed": 1, "expired": 1, "cancelled": 2, "checked_in": 2, "no_show": 2,
             "overstay": 3, "completed": 4}
_STATUS = {"held": "TENTATIVE", "cancelled": "CANCELLED", "expired": "CANCELLED"}


# --- reads ----------------------------------------------------------------------------------------


def feed_of(user) -> CalendarFeed | None:
    return CalendarFeed.objects.filter(user=user).first()


def person_by_token(token: str):
    """The owner of a feed URL. An unknown, rotated or turned-off token is simply not found."""
    feed = CalendarFeed.objects.select_related("user").filter(token=token).first() if token else None
    if feed is None or not feed.user.is_active:
        raise NotFound(_("No such calendar."))
    return feed.user


def feed_path(feed: CalendarFeed) -> str:
    return reverse("platform:calendar_feed", args=[feed.token])


# --- writes ---------------------------------------------------------------------------------------


def rotate_calendar_feed(*, actor) -> CalendarFeed:
    """Issue the person's feed URL, or replace it: the old URL stops working at once."""
    with transaction.atomic():
        feed = CalendarFeed.objects.select_for_update().filter(user=actor).first()
        token = secrets.token_urlsafe(24)
        if feed is None:
            feed = CalendarFeed.objects.create(user=actor, token=token)
            record_audit(actor=actor, action="calendar_feed.created", obj=feed)
        else:
            feed.token, feed.rotated_at = token, timezone.now()
            feed.save(update_fields=["token", "rotated_at"])
            record_audit(actor=actor, action="calendar_feed.rotated", obj=feed)
    return feed


def turn_off_calendar_feed(*, actor) -> bool:
    """Remove the feed URL altogether; True if there was one."""
    with transaction.atomic():
        feed = CalendarFeed.objects.select_for_update().filter(user=actor).first()
        if feed is None:
            return False
        record_audit(actor=actor, action="calendar_feed.turned_off", obj=feed)
        feed.delete()
    return True


# --- the feed -------------------------------------------------------------------------------------


def _language(person) -> str:
    return person.language or settings.LANGUAGE_CODE


def feed_name(person) -> str:
    with translation.override(_language(person)):
        return _("%(name)s's bookings (pumasi)") % {"name": person.name}


def booking_items(person, *, base_url: str, now: datetime | None = None) -> list[CalendarItem]:
    """The person's bookings from PAST_DAYS ago on, in their own language. Cancelled bookings and
    lapsed holds stay in as STATUS:CANCELLED so calendars that had them remove or strike them;
    no-shows and completed ones stay as they were booked."""
    from pumasi.sharing import selectors as sharing

    now = now or timezone.now()
    with translation.override(_language(person)):
        return [_booking_item(b, base_url) for b in
                sharing.bookings_for_calendar(person, since=now - timedelta(days=PAST_DAYS), limit=ITEM_LIMIT)]


def _booking_item(booking, base_url: str) -> CalendarItem:
    resource, zone = booking.resource, booking.resource.zone
    lines = [_("State: %(state)s") % {"state": booking.get_status_display()}]
    if resource.name:
        lines.append(_("Space: %(code)s %(name)s") % {"code": resource.code, "name": resource.name})
    if booking.fee_amount:
        lines.append(_("Fee: %(amount)s %(currency)s") % {"amount": booking.fee_amount, "currency": booking.currency})
    if booking.plate:
        lines.append(_("Car: %(plate)s") % {"plate": booking.plate})
    latitude, longitude = resource.latitude or zone.latitude, resource.longitude or zone.longitude
    # The moments the booking records. A cancellation or a no-show keeps no time of its own, so such
    # a booking has no LAST-MODIFIED rather than a wrong one; SEQUENCE still tells clients it changed.
    moments = [booking.created_at, booking.checked_in_at, booking.finished_at, booking.driver_notified_at,
               booking.committee_notified_at, booking.hold_expires_at if booking.status == "expired" else None]
    updated = None if booking.status in ("cancelled", "no_show") else max(m for m in moments if m is not None)
    return CalendarItem(
        uid=uid_for("booking", booking.pk),
        summary=f"{resource.code} · {zone.name}",
        start=booking.starts_at, end=booking.ends_at,
        description="\n".join(lines),
        location=", ".join(part for part in (zone.name, zone.address) if part),
        geo=(float(latitude), float(longitude)) if latitude is not None and longitude is not None else None,
        url=base_url + reverse("sharing:zone", args=[zone.slug]),
        created=booking.created_at,
        updated=updated,
        sequence=_REVISION.get(booking.status, 0),
        status=_STATUS.get(booking.status, "CONFIRMED"),
    )
