"""Write path of the sharing capability: zones, spaces and holders, the sharing policy,
bookings and their lifecycle, sensor readings and what they mean, and the periodic sweep."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from pumasi.communities.permissions import role_of
from pumasi.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from pumasi.core.events import publish_event, publish_events
from pumasi.platform.services import record_audit, record_audits
from pumasi.sharing import permissions, policy, selectors
from pumasi.sharing.models import (
    Booking,
    Device,
    Holiday,
    IngestRejection,
    PolicyWindow,
    Reading,
    Resource,
    Session,
    Zone,
)

logger = logging.getLogger("pumasi.sharing")

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,58}[a-z0-9]$")
CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,19}$")
PHONE_RE = re.compile(r"^\+?[0-9][0-9 -]{6,18}$")
MAX_BOOKING_DAYS = 7
MAX_AHEAD_DAYS = 90
CHECK_IN_EARLY = timedelta(minutes=15)
FUTURE_SKEW = timedelta(minutes=5)


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


# --- zones, spaces, holders ---------------------------------------------------------------

def create_zone(*, actor, community, name: str, slug: str, kind: str = Zone.Kind.PARKING, time_zone: str | None = None,
                address: str = "", latitude=None, longitude=None, allow_visitors: bool = False,
                public_board: bool = True) -> Zone:
    from pumasi.communities.permissions import require

    require(actor, "edit", community)
    errors: dict[str, list[str]] = {}
    name = (name or "").strip()
    if not 1 <= len(name) <= 120:
        errors["name"] = ["Give a name of 1 to 120 characters."]
    if not SLUG_RE.match(slug or ""):
        errors["slug"] = ["3 to 60 lower-case letters, digits or hyphens."]
    elif Zone.objects.filter(slug=slug).exists():
        errors["slug"] = ["This address is taken."]
    if kind not in Zone.Kind.values:
        errors["kind"] = [f"Choose one of: {', '.join(Zone.Kind.values)}."]
    time_zone = time_zone or community.time_zone
    try:
        zoneinfo.ZoneInfo(time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        errors["time_zone"] = ["Unknown time zone; use a name such as Asia/Seoul."]
    if latitude is not None and not -90 <= float(latitude) <= 90:
        errors["latitude"] = ["Between -90 and 90."]
    if longitude is not None and not -180 <= float(longitude) <= 180:
        errors["longitude"] = ["Between -180 and 180."]
    if errors:
        raise InvalidInput("The zone was not created.", field_errors=errors)
    try:
        with transaction.atomic():
            zone = Zone.objects.create(
                community=community, name=name, slug=slug, kind=kind, time_zone=time_zone, address=address.strip(),
                latitude=latitude, longitude=longitude, allow_visitors=allow_visitors, public_board=public_board,
                ingest_secret=secrets.token_urlsafe(32),
            )
            record_audit(actor=actor, action="sharing.zone_created", obj=zone, community=community,
                         changes={"name": name, "slug": slug, "kind": kind})
            publish_event(name="sharing.zone_created", community=community, payload={"zone": slug})
    except IntegrityError as exc:
        raise InvalidInput("The zone was not created.", field_errors={"slug": ["This address is taken."]}) from exc
    return zone


def add_resource(*, actor, zone: Zone, code: str, name: str = "", kind: str = Resource.Kind.PARKING_SPACE,
                 map_x: int = 50, map_y: int = 50, latitude=None, longitude=None) -> Resource:
    """Organisers add spaces (the leftover corner of the alley becomes space 15)."""
    permissions.require(actor, "manage", zone)
    errors: dict[str, list[str]] = {}
    code = (code or "").strip()
    if not CODE_RE.match(code):
        errors["code"] = ["1 to 20 letters, digits or hyphens."]
    elif Resource.objects.filter(zone=zone, code=code).exists():
        errors["code"] = ["A space with this code exists in the zone."]
    if kind not in Resource.Kind.values:
        errors["kind"] = [f"Choose one of: {', '.join(Resource.Kind.values)}."]
    for field, value in (("map_x", map_x), ("map_y", map_y)):
        if not isinstance(value, int) or not 0 <= value <= 100:
            errors[field] = ["A position from 0 to 100 (% of the map)."]
    if errors:
        raise InvalidInput("The space was not added.", field_errors=errors)
    try:
        with transaction.atomic():
            resource = Resource.objects.create(zone=zone, code=code, name=(name or "").strip(), kind=kind, map_x=map_x,
                                               map_y=map_y, latitude=latitude, longitude=longitude)
            record_audit(actor=actor, action="sharing.resource_added", obj=resource, community=zone.community,
                         changes={"code": code, "kind": kind})
            publish_event(name="sharing.resource_added", community=zone.community,
                          payload={"zone": zone.slug, "code": code})
            _bump(zone)
    except IntegrityError as exc:
        raise InvalidInput("The space was not added.", field_errors={"code": ["A space with this code exists."]}) from exc
    return resource


def retire_resource(*, actor, resource: Resource, now: datetime | None = None) -> Resource:
    zone = resource.zone
    permissions.require(actor, "manage", zone)
    now = _now(now)
    with transaction.atomic():
        locked = Resource.objects.select_for_update().get(pk=resource.pk)
        if locked.retired_at is not None:
            return locked
        pending = Booking.objects.filter(resource=locked, status__in=Booking.LIVE, ends_at__gt=now).count()
        if pending:
            raise Conflict(f"{pending} booking(s) of this space are still live; cancel them first.",
                           code="bookings_live")
        locked.retired_at = now
        locked.save(update_fields=["retired_at"])
        Device.objects.filter(resource=locked, retired_at__isnull=True).update(resource=None)
        record_audit(actor=actor, action="sharing.resource_retired", obj=locked, community=zone.community)
        publish_event(name="sharing.resource_retired", community=zone.community,
                      payload={"zone": zone.slug, "code": locked.code})
        _bump(zone)
    return locked


def assign_holder(*, actor, resource: Resource, holder, term_start: date | None = None,
                  term_end: date | None = None) -> Resource:
    """The committee assigns (or transfers) a space's permit for a term; replaces the district's
    quarterly re-application. holder=None ends the permit."""
    zone = resource.zone
    permissions.require(actor, "decide", zone)
    errors: dict[str, list[str]] = {}
    if holder is not None and role_of(holder, zone.community) is None:
        errors["holder"] = ["The holder must be a member of the community."]
    if term_start and term_end and term_end < term_start:
        errors["term_end"] = ["The term must end after it starts."]
    if errors:
        raise InvalidInput("The holder was not assigned.", field_errors=errors)
    with transaction.atomic():
        locked = Resource.objects.select_for_update().get(pk=resource.pk)
        if locked.retired_at is not None:
            raise Conflict("This space is retired.", code="retired")
        previous = locked.holder_id
        locked.holder = holder
        locked.holder_term_start = term_start if holder else None
        locked.holder_term_end = term_end if holder else None
        locked.renewal_reminded_at = None
        if holder is None or holder.pk != previous:
            locked.holder_shares = True
        locked.save(update_fields=["holder", "holder_term_start", "holder_term_end", "renewal_reminded_at",
                                   "holder_shares"])
        record_audit(actor=actor, action="sharing.holder_assigned", obj=locked, community=zone.community, changes={
            "holder": [previous, holder.pk if holder else None],
            "term": [term_start.isoformat() if term_start else None, term_end.isoformat() if term_end else None]})
        publish_event(name="sharing.holder_assigned", community=zone.community,
                      payload={"zone": zone.slug, "code": locked.code, "holder_id": holder.pk if holder else None})
        if holder is not None:
            publish_event(name="sharing.holder_assigned", community=zone.community, recipient=holder,
                          payload={"zone": zone.slug, "code": locked.code,
                                   "term_end": term_end.isoformat() if term_end else None})
        _bump(zone)
    return locked


def set_sharing(*, actor, resource: Resource, shares: bool, now: datetime | None = None) -> Resource:
    """The holder opts their space out of the commons, or back in. Opting out cancels others'
    bookings that have not started yet; each booker is told."""
    zone = resource.zone
    if not (actor.is_authenticated and resource.holder_id == actor.pk):
        if role_of(actor, zone.community) is None:
            raise NotFound("No such space.")
        raise PermissionDenied("Only the holder of this space may opt it in or out.")
    now = _now(now)
    with transaction.atomic():
        locked = Resource.objects.select_for_update().get(pk=resource.pk)
        if locked.holder_shares == shares:
            return locked
        locked.holder_shares = shares
        locked.save(update_fields=["holder_shares"])
        cancelled = []
        if not shares:
            for booking in Booking.objects.select_for_update().filter(
                    resource=locked, status__in=["held", "confirmed"], starts_at__gt=now).exclude(user=actor):
                _set_status(booking, Booking.Status.CANCELLED, actor=actor, reason="holder_opted_out")
                cancelled.append(booking.pk)
                if booking.user_id:
                    publish_event(name="sharing.booking_cancelled", community=zone.community, recipient=booking.user,
                                  payload={"booking_id": booking.pk, "reason": "holder_opted_out"})
        action = "sharing.holder_opted_in" if shares else "sharing.holder_opted_out"
        record_audit(actor=actor, action=action, obj=locked, community=zone.community,
                     changes={"holder_shares": [not shares, shares], "cancelled_bookings": cancelled})
        publish_event(name=action, community=zone.community, payload={"zone": zone.slug, "code": locked.code})
        _bump(zone)
    return locked


# --- sharing policy -------------------------------------------------------------------------

def _parse_days(days) -> int:
    if isinstance(days, int):
        return days
    mask = 0
    for item in days:
        index = policy.DAY_NAMES.index(item) if item in policy.DAY_NAMES else int(item)
        mask |= 1 << index
    return mask


def add_window(*, actor, zone: Zone, name: str, days, start_time: time, end_time: time, audience: str,
               fee_per_hour: int = 0, max_stay_minutes: int | None = None, notice_minutes: int = 0,
               resource_kind: str = "") -> PolicyWindow:
    """Add a rule; refused when it would give one audience two answers at the same time."""
    permissions.require(actor, "decide", zone)
    errors: dict[str, list[str]] = {}
    try:
        mask = _parse_days(days)
    except (ValueError, TypeError):
        mask = 0
    if not 1 <= mask <= 255:
        errors["days"] = ["Choose at least one day (Mon … Sun, Holidays)."]
    if audience not in policy.RANK:
        errors["audience"] = [f"Choose one of: {', '.join(policy.RANK)}."]
    if not isinstance(fee_per_hour, int) or fee_per_hour < 0 or fee_per_hour > 10_000_000:
        errors["fee_per_hour"] = ["A whole amount from 0 to 10,000,000."]
    if max_stay_minutes is not None and not 1 <= max_stay_minutes <= MAX_BOOKING_DAYS * 1440:
        errors["max_stay_minutes"] = [f"From 1 minute to {MAX_BOOKING_DAYS} days."]
    if not 0 <= notice_minutes <= 60 * 24 * 30:
        errors["notice_minutes"] = ["From 0 to 30 days."]
    if resource_kind and resource_kind not in Resource.Kind.values:
        errors["resource_kind"] = [f"Choose one of: {', '.join(Resource.Kind.values)}."]
    if not (name or "").strip():
        errors["name"] = ["Give the rule a name."]
    if start_time.second or end_time.second:
        errors["start_time"] = ["Whole minutes only."]
    if errors:
        raise InvalidInput("The rule was not added.", field_errors=errors)
    with transaction.atomic():
        Zone.objects.select_for_update().filter(pk=zone.pk).first()  # one policy change at a time per zone
        window = PolicyWindow(zone=zone, name=name.strip(), days=mask, start_time=start_time, end_time=end_time,
                              audience=audience, fee_per_hour=fee_per_hour, max_stay_minutes=max_stay_minutes,
                              notice_minutes=notice_minutes, resource_kind=resource_kind)
        candidate = policy.Rule(id=0, name=window.name, days=mask, start=start_time.hour * 60 + start_time.minute,
                                end=end_time.hour * 60 + end_time.minute, audience=audience,
                                resource_kind=resource_kind)
        clashes = [other for first, other in policy.contradictions([candidate, *selectors.rules_for(zone)])
                   if first is candidate]
        if clashes:
            raise InvalidInput(
                f"This rule contradicts rule {clashes[0].describe()}: the same people would get two answers "
                "at the same time.", field_errors={"start_time": [f"Overlaps '{clashes[0].name}'."]},
                code="contradictory_policy")
        window.save()
        record_audit(actor=actor, action="sharing.window_added", obj=window, community=zone.community, changes={
            "name": window.name, "days": mask, "from": start_time.isoformat(), "until": end_time.isoformat(),
            "audience": audience, "fee_per_hour": fee_per_hour, "max_stay_minutes": max_stay_minutes})
        publish_event(name="sharing.policy_changed", community=zone.community, payload={"zone": zone.slug})
    return window


def remove_window(*, actor, window: PolicyWindow) -> None:
    zone = window.zone
    permissions.require(actor, "decide", zone)
    with transaction.atomic():
        record_audit(actor=actor, action="sharing.window_removed", obj=window, community=zone.community,
                     changes={"name": window.name})
        window.delete()
        publish_event(name="sharing.policy_changed", community=zone.community, payload={"zone": zone.slug})


def add_holiday(*, actor, zone: Zone, day: date, name: str) -> Holiday:
    permissions.require(actor, "decide", zone)
    if not (name or "").strip():
        raise InvalidInput("The holiday was not added.", field_errors={"name": ["Give it a name."]})
    with transaction.atomic():
        holiday, created = Holiday.objects.get_or_create(zone=zone, date=day, defaults={"name": name.strip()})
        if created:
            record_audit(actor=actor, action="sharing.holiday_added", obj=holiday, community=zone.community,
                         changes={"date": day.isoformat(), "name": holiday.name})
    return holiday


# --- bookings ---------------------------------------------------------------------------------

def _bump(zone: Zone) -> None:
    Zone.objects.filter(pk=zone.pk).update(board_version=F("board_version") + 1)


def _set_status(booking: Booking, status: str, *, actor=None, reason: str = "", **fields) -> None:
    old = booking.status
    booking.status = status
    for key, value in fields.items():
        setattr(booking, key, value)
    booking.save(update_fields=["status", *fields])
    zone = booking.resource.zone
    record_audit(actor=actor, action=f"sharing.booking_{status}", obj=booking, community=zone.community,
                 changes={"status": [old, status], **({"reason": reason} if reason else {})})
    publish_event(name=f"sharing.booking_{status}", community=zone.community,
                  payload={"booking_id": booking.pk, "zone": zone.slug, "code": booking.resource.code})


def create_booking(*, actor, resource: Resource, starts_at: datetime, ends_at: datetime, visitor_name: str = "",
                   visitor_phone: str = "", plate: str = "", hold: bool = False,
                   now: datetime | None = None) -> Booking:
    """Book a space for a member, or for a visitor without an account where the zone allows.
    The policy engine decides and prices; the database makes sure no two live bookings overlap."""
    resource = Resource.objects.select_related("zone", "zone__community").get(pk=resource.pk)  # fresh: opt-outs
    zone = resource.zone
    now = _now(now)
    signed_in = actor is not None and actor.is_authenticated
    is_member = signed_in and role_of(actor, zone.community) is not None
    errors: dict[str, list[str]] = {}
    if signed_in and is_member:
        permissions.require(actor, "book", zone)
    elif not zone.allow_visitors:
        if signed_in:
            raise NotFound("No such zone.")
        raise PermissionDenied("Visitors cannot book in this zone; sign in as a member.")
    if not is_member:
        visitor_name = (visitor_name or "").strip()
        visitor_phone = (visitor_phone or "").strip()
        plate = (plate or "").strip().upper()
        if not 1 <= len(visitor_name) <= 80:
            errors["visitor_name"] = ["Give your name."]
        if visitor_phone and not PHONE_RE.match(visitor_phone):
            errors["visitor_phone"] = ["Give a phone number, e.g. 010-1234-5678."]
        if plate and not 4 <= len(plate) <= 20:
            errors["plate"] = ["Give the car plate, e.g. 12가3456."]
        if not visitor_phone and not plate:
            errors["visitor_phone"] = ["Give a phone number or a car plate."]
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        errors["starts_at"] = ["Give times with a time zone offset."]
    elif ends_at <= starts_at:
        errors["ends_at"] = ["The end must be after the start."]
    else:
        if starts_at < now - timedelta(minutes=1):
            errors["starts_at"] = ["This time is in the past."]
        elif starts_at > now + timedelta(days=MAX_AHEAD_DAYS):
            errors["starts_at"] = [f"Book at most {MAX_AHEAD_DAYS} days ahead."]
        if ends_at - starts_at > timedelta(days=MAX_BOOKING_DAYS):
            errors["ends_at"] = [f"At most {MAX_BOOKING_DAYS} days."]
    if resource.retired_at is not None:
        errors["resource"] = ["This space is no longer in use."]
    if errors:
        raise InvalidInput("The booking was not made.", field_errors=errors)
    decision = selectors.decision_for(user=actor if is_member else None, resource=resource, t1=starts_at,
                                      t2=ends_at, now=now)
    if not decision.allowed:
        raise InvalidInput(f"The sharing rules do not allow this booking. {decision.reason}",
                           field_errors={"starts_at": decision.reasons}, code=f"policy_{decision.codes[0]}")
    with transaction.atomic():
        # Serialises bookings of one space on PostgreSQL (and gives a clear message); the
        # exclusion constraint still holds if anything ever bypasses this path. SQLite took
        # the database write lock at BEGIN (transaction_mode=IMMEDIATE).
        Resource.objects.select_for_update().filter(pk=resource.pk).first()
        clash = Booking.objects.filter(resource=resource, status__in=Booking.LIVE, starts_at__lt=ends_at,
                                       ends_at__gt=starts_at).order_by("starts_at").first()
        if clash is not None:
            raise Conflict(_overlap_message(clash, zone), code="overlap")
        try:
            with transaction.atomic():
                booking = Booking.objects.create(
                    resource=resource, user=actor if is_member else None, visitor_name=visitor_name if not is_member
                    else "", visitor_phone=visitor_phone if not is_member else "", plate=plate if not is_member else "",
                    starts_at=starts_at, ends_at=ends_at,
                    status=Booking.Status.HELD if hold else Booking.Status.CONFIRMED, audience=decision.audience,
                    hold_expires_at=now + timedelta(minutes=zone.hold_minutes) if hold else None,
                    fee_amount=decision.fee, currency=zone.community.currency, reference=secrets.token_urlsafe(16),
                )
        except IntegrityError as exc:
            raise Conflict("This space was just booked for an overlapping time.", code="overlap") from exc
        record_audit(actor=actor if is_member else None, action="sharing.booking_created", obj=booking,
                     community=zone.community, changes={
                         "code": resource.code, "starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat(),
                         "status": booking.status, "fee": decision.fee, "visitor": not is_member})
        publish_event(name="sharing.booking_created", community=zone.community, payload={
            "booking_id": booking.pk, "zone": zone.slug, "code": resource.code, "starts_at": starts_at.isoformat(),
            "ends_at": ends_at.isoformat()})
    return booking


def _overlap_message(clash: Booking, zone: Zone) -> str:
    tz = policy.tz_of(zone.time_zone)
    return (f"This space is already booked from {clash.starts_at.astimezone(tz):%Y-%m-%d %H:%M} "
            f"to {clash.ends_at.astimezone(tz):%H:%M}.")


def _locked_booking(booking: Booking) -> Booking:
    return Booking.objects.select_for_update(of=("self",)).select_related(
        "resource", "resource__zone", "resource__zone__community", "user").get(pk=booking.pk)


def _require_handler(actor, booking: Booking, reference: str | None) -> None:
    if reference is not None and secrets.compare_digest(reference, booking.reference):
        return
    if not permissions.may_handle_booking(actor, booking):
        raise NotFound("No such booking.")


def confirm_booking(*, actor, booking: Booking, reference: str | None = None, now: datetime | None = None) -> Booking:
    _require_handler(actor, booking, reference)
    now = _now(now)
    with transaction.atomic():
        locked = _locked_booking(booking)
        if locked.status != Booking.Status.HELD:
            raise Conflict(f"Only a held booking can be confirmed; this one is {locked.get_status_display()}.",
                           code="not_held")
        if locked.hold_expires_at and locked.hold_expires_at < now:
            _set_status(locked, Booking.Status.EXPIRED, reason="hold_lapsed")
            raise Conflict("The hold lapsed; book again.", code="hold_lapsed")
        _set_status(locked, Booking.Status.CONFIRMED, actor=actor, hold_expires_at=None)
    return locked


def cancel_booking(*, actor, booking: Booking, reference: str | None = None, now: datetime | None = None) -> Booking:
    _require_handler(actor, booking, reference)
    now = _now(now)
    with transaction.atomic():
        locked = _locked_booking(booking)
        if locked.status not in ("held", "confirmed"):
            raise Conflict(f"A booking that is {locked.get_status_display()} cannot be cancelled.",
                           code="not_cancellable")
        if locked.starts_at <= now and not permissions.can(actor, "decide", locked.resource.zone):
            raise Conflict("The booking has started; check out instead.", code="started")
        _set_status(locked, Booking.Status.CANCELLED, actor=actor)
        _bump(locked.resource.zone)
    return locked


def check_in(*, actor, booking: Booking, reference: str | None = None, now: datetime | None = None) -> Booking:
    """By hand (no sensor, e.g. a desk), or called by the sensor path."""
    _require_handler(actor, booking, reference)
    now = _now(now)
    with transaction.atomic():
        locked = _locked_booking(booking)
        _check_in_locked(locked, now, actor=actor)
    return locked


def _check_in_locked(booking: Booking, now: datetime, *, actor=None) -> None:
    if booking.status not in ("confirmed",):
        raise Conflict(f"A booking that is {booking.get_status_display()} cannot be checked in.", code="not_confirmed")
    if not booking.starts_at - CHECK_IN_EARLY <= now < booking.ends_at:
        raise Conflict("Check in from 15 minutes before the start until the end.", code="outside_booking")
    _set_status(booking, Booking.Status.CHECKED_IN, actor=actor, checked_in_at=now)


def complete_booking(*, actor, booking: Booking, reference: str | None = None,
                     now: datetime | None = None) -> Booking:
    _require_handler(actor, booking, reference)
    now = _now(now)
    with transaction.atomic():
        locked = _locked_booking(booking)
        _complete_locked(locked, now, actor=actor)
    return locked


def _complete_locked(booking: Booking, now: datetime, *, actor=None) -> None:
    if booking.status not in ("checked_in", "overstay"):
        raise Conflict(f"A booking that is {booking.get_status_display()} cannot be completed.", code="not_in_use")
    fee = booking.fee_amount
    if now > booking.ends_at and booking.audience != policy.HOLDERS:
        # An overstay is charged at the public rate for the extra time, as far as the rules price it.
        extra = selectors.decision_for(user=None, resource=booking.resource, t1=booking.ends_at, t2=now,
                                       check_notice=False, audiences={policy.ANYONE})
        fee += policy.fee_of(extra.pieces)
    _set_status(booking, Booking.Status.COMPLETED, actor=actor, finished_at=now, fee_amount=fee)
    _post_fee(booking=booking, amount=fee, what="booking")


def _split(amount: int, zone: Zone) -> tuple[int, int, int]:
    """Upkeep fund / community / holders by the zone's basis points; what rounding leaves goes to upkeep."""
    community = amount * zone.split_community_bp // 10000
    holders = amount * zone.split_holders_bp // 10000
    return amount - community - holders, community, holders


def _post_fee(*, booking: Booking | None = None, session: Session | None = None, amount: int, what: str) -> None:
    target = booking or session
    target.fee_amount = amount
    _post_fees([target], what=what)


def _post_fees(targets: list, *, what: str) -> None:
    """Post completed bookings' or visitor walk-ins' fees to the cooperative ledger, split by the
    zone's rule: the payer is debited (a member's account, or cash for a visitor who paid, or a
    receivable for a walk-in not yet paid) and the upkeep fund, the community and the sharing
    holders are credited. One ledger call per zone (a sensor batch closes many walk-ins at once).
    Idempotent by key; a refusal by the ledger never blocks the sensor path: the fees stay
    unposted (`fee_posted` False) and the sweep tries again."""
    from pumasi.core.errors import DomainError
    from pumasi.ledger import services as ledger

    by_zone: dict[int, list] = {}
    for target in targets:
        if target.fee_amount > 0:
            by_zone.setdefault(target.resource.zone_id, []).append(target)
    events = []
    for group in by_zone.values():
        zone = group[0].resource.zone
        community = zone.community
        try:
            with transaction.atomic():
                upkeep = ledger.ensure_account(community=community, code=f"sharing:{zone.slug}:upkeep",
                                               name=f"{zone.name}: upkeep fund", type="liability", owner_kind="pool")
                income = ledger.standard_account(community=community, key="income")
                walk_ins = None
                holder_ids = list(Resource.objects.filter(zone=zone, holder__isnull=False, holder_shares=True,
                                                          retired_at__isnull=True)
                                  .order_by("holder_id").values_list("holder", flat=True).distinct())
                holder_accounts = []
                if holder_ids:
                    from django.contrib.auth import get_user_model

                    holder_accounts = [ledger.member_account(community=community, user=person) for person in
                                       get_user_model().objects.filter(pk__in=holder_ids).order_by("pk")]
                entries = []
                for target in group:
                    amount = target.fee_amount
                    if isinstance(target, Booking) and target.user_id:
                        payer = ledger.member_account(community=community, user=target.user)
                    elif isinstance(target, Booking):
                        payer = ledger.standard_account(community=community, key="cash")
                    else:
                        if walk_ins is None:
                            walk_ins = ledger.ensure_account(
                                community=community, code=f"sharing:{zone.slug}:walk-ins",
                                name=f"{zone.name}: walk-in fees due", type="asset", owner_kind="outside")
                        payer = walk_ins
                    to_upkeep, to_community, to_holders = _split(amount, zone)
                    postings = [(payer, amount)]
                    if not holder_accounts:
                        to_upkeep += to_holders
                        to_holders = 0
                    if to_upkeep:
                        postings.append((upkeep, -to_upkeep))
                    if to_community:
                        postings.append((income, -to_community))
                    if to_holders:
                        share, rest = divmod(to_holders, len(holder_accounts))
                        for index, account in enumerate(holder_accounts):
                            part = share + (1 if index < rest else 0)
                            if part:
                                postings.append((account, -part))
                    entries.append({"idempotency_key": f"sharing:{what}:{target.pk}",
                                    "memo": f"{zone.name} {target.resource.code}: {what} fee", "postings": postings,
                                    "kind": "sharing_fee",
                                    "reference": {"zone": zone.slug, "code": target.resource.code, what: target.pk}})
                for start in range(0, len(entries), ledger.MAX_BATCH):
                    ledger.post_transactions(community=community, actor=None, entries=entries[start:start + ledger.MAX_BATCH])
                type(group[0]).objects.filter(pk__in=[target.pk for target in group]).update(fee_posted=True)
                for target in group:
                    target.fee_posted = True
        except DomainError as error:
            logger.warning("%d %s fees in %s not posted to the ledger yet: %s", len(group), what, zone.slug,
                           error.message)
        events += [{"name": "sharing.fee_charged", "community": community, "payload": {
            "what": what, "id": target.pk, "amount": target.fee_amount, "currency": community.currency,
            "posted": target.fee_posted}} for target in group]
    publish_events(events)


# --- upkeep costs ---------------------------------------------------------------------------------

UPKEEP_FROM = ("fund", "cash")
MAX_UPKEEP = 10**12


def upkeep_accounts(zone: Zone):
    """(the zone's upkeep expense account, its upkeep fund): created on first use."""
    from pumasi.ledger import services as ledger

    community = zone.community
    expense = ledger.ensure_account(community=community, code=f"sharing:{zone.slug}:upkeep-costs",
                                    name=f"{zone.name}: upkeep costs", type="expense", owner_kind="community")
    fund = ledger.ensure_account(community=community, code=f"sharing:{zone.slug}:upkeep",
                                 name=f"{zone.name}: upkeep fund", type="liability", owner_kind="pool")
    return expense, fund


def record_upkeep_cost(*, actor, zone: Zone, amount: int, description: str, paid_from: str = "fund",
                       idempotency_key: str = ""):
    """Post an upkeep cost of the zone (sensor batteries, the board's repair, signs) to the ledger as
    an expense paid in cash. Paid from the upkeep fund (what visitors' fees set aside), the fund's
    earmark is released in the same entry (the fund is debited and the community's income
    credited), so the fund shows what is left; the ledger's guard refuses to let the fund hand out
    more than it holds. The same idempotency key again returns the first entry."""
    from pumasi.ledger import selectors as ledger_selectors
    from pumasi.ledger import services as ledger

    permissions.require(actor, "decide", zone)
    errors: dict[str, list[str]] = {}
    description = (description or "").strip()
    if isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= MAX_UPKEEP:
        errors["amount"] = [_("A whole amount from 1 to 1,000,000,000,000.")]
    if not 1 <= len(description) <= 200:
        errors["description"] = [_("Say what was paid for, in 1 to 200 characters.")]
    if paid_from not in UPKEEP_FROM:
        errors["paid_from"] = [_("Choose the upkeep fund or cash.")]
    idempotency_key = (idempotency_key or "").strip() or secrets.token_urlsafe(16)
    if not re.match(r"^[A-Za-z0-9_.:-]{8,100}$", idempotency_key):
        errors["idempotency_key"] = [_("8 to 100 letters, digits or _ . : -")]
    if errors:
        raise InvalidInput(_("The cost was not recorded."), field_errors=errors)
    community = zone.community
    with transaction.atomic():
        expense, fund = upkeep_accounts(zone)
        cash = ledger.standard_account(community=community, key="cash")
        postings = [(expense, amount), (cash, -amount)]
        key = f"sharing:upkeep:{zone.pk}:{idempotency_key}"
        from pumasi.ledger.models import Transaction

        replay = Transaction.objects.filter(community=community, idempotency_key=key).exists()
        if paid_from == "fund":
            held = -ledger_selectors.balance_of(fund)
            if not replay and amount > held:
                raise InvalidInput(_("The cost was not recorded."), field_errors={"amount": [
                    _("The upkeep fund holds %(held)s %(currency)s; pay the rest from cash.") % {
                        "held": held, "currency": community.currency}]}, code="fund_too_small")
            income = ledger.standard_account(community=community, key="income")
            postings += [(fund, amount), (income, -amount)]
        entry = ledger.post_transaction(
            community=community, actor=actor, idempotency_key=key, memo=f"{zone.name}: {description}"[:500],
            postings=postings, kind="sharing_upkeep",
            reference={"zone": zone.slug, "paid_from": paid_from, "description": description})
        if not replay:
            record_audit(actor=actor, action="sharing.upkeep_cost_recorded", obj=zone, community=community,
                         changes={"amount": amount, "description": description, "paid_from": paid_from,
                                  "transaction": entry.pk})
            publish_event(name="sharing.upkeep_cost_recorded", community=community, payload={
                "zone": zone.slug, "amount": amount, "currency": community.currency, "paid_from": paid_from,
                "transaction_id": entry.pk})
    return entry


# --- sensors ------------------------------------------------------------------------------------

class IngestError(Exception):
    def __init__(self, status: int, reason: str, detail: str):
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail


@dataclass
class IncomingReading:
    external_id: str
    occupied: bool
    measured_at: datetime
    battery: int | None = None
    fcnt: int | None = None


def register_device(*, actor, zone: Zone, external_id: str, resource: Resource | None = None,
                    interval_seconds: int = 300) -> tuple[Device, str]:
    """Register a sensor; returns it with its secret (shown once to the installer)."""
    permissions.require(actor, "manage", zone)
    errors: dict[str, list[str]] = {}
    external_id = (external_id or "").strip().lower()
    if not re.match(r"^[a-z0-9][a-z0-9_.:-]{0,63}$", external_id):
        errors["external_id"] = ["1 to 64 letters, digits, '-', '_', '.' or ':'."]
    elif Device.objects.filter(external_id=external_id).exists():
        errors["external_id"] = ["A device with this id is registered."]
    if resource is not None and resource.zone_id != zone.pk:
        errors["resource"] = ["That space is in another zone."]
    elif resource is not None and Device.objects.filter(resource=resource, retired_at__isnull=True).exists():
        errors["resource"] = ["That space already has a sensor."]
    if not 10 <= interval_seconds <= 86400:
        errors["interval_seconds"] = ["From 10 s to one day."]
    if errors:
        raise InvalidInput("The device was not registered.", field_errors=errors)
    secret = secrets.token_hex(32)
    try:
        with transaction.atomic():
            device = Device.objects.create(zone=zone, resource=resource, external_id=external_id, secret=secret,
                                           interval_seconds=interval_seconds)
            record_audit(actor=actor, action="sharing.device_registered", obj=device, community=zone.community,
                         changes={"external_id": external_id, "resource": resource.code if resource else None})
    except IntegrityError as exc:
        raise InvalidInput("The device was not registered.",
                           field_errors={"resource": ["That space already has a sensor."]}) from exc
    return device, secret


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, signature: str | None) -> bool:
    return bool(signature) and hmac.compare_digest(sign(secret, body).encode(), signature.strip().encode())


def log_rejection(*, via: str, error: IngestError, device_ref: str = "", zone: Zone | None = None) -> None:
    """Kept in its own transaction: the reading was refused, the refusal is still recorded."""
    logger.warning("sensor reading refused via %s (device %r): %s — %s", via, device_ref, error.reason, error.detail)
    try:
        IngestRejection.objects.create(zone=zone, via=via, device_ref=device_ref[:64], reason=error.reason,
                                       detail=error.detail[:300])
    except Exception:  # the log must never turn a clear refusal into a 500
        logger.exception("could not record the refused reading")


def ingest(*, via: str, reading: IncomingReading, device: Device | None = None, now: datetime | None = None) -> str:
    """Apply one authenticated reading: 'applied', 'duplicate' (seen before) or 'stale' (older
    than what the device already told us: kept, never applied)."""
    return ingest_many(via=via, readings=[reading], devices={reading.external_id: device} if device else None,
                       now=now)[0]


def ingest_many(*, via: str, readings: list[IncomingReading], devices: dict[str, Device] | None = None,
                now: datetime | None = None) -> list[str]:
    """Apply a batch in one transaction, with the same answer per reading as applying them one by
    one in arrival order ('applied', 'duplicate' or 'stale'), at a handful of queries per batch:
    the devices are looked up and locked together (in id order), duplicates found with one query,
    the readings inserted in bulk, the devices updated in bulk, and only each device's newest
    applied reading moves its space's state (what a burst of readings in between would have
    done to the space, a walk-in of a few milliseconds, is not worth keeping). Any reading the
    batch cannot take (a time in the future, an unknown device) refuses the whole batch; the
    MQTT subscriber then applies it reading by reading to refuse just that one."""
    now = _now(now)
    for reading in readings:
        if reading.measured_at > now + FUTURE_SKEW:
            raise IngestError(422, "malformed", "The reading's time is in the future.")
    if not readings:
        return []
    with transaction.atomic():
        found = {device.external_id: device for device in Device.objects.select_for_update(of=("self",))
                 .filter(external_id__in={r.external_id for r in readings}, retired_at__isnull=True).order_by("pk")}
        for reading in readings:
            if reading.external_id not in found:
                raise IngestError(404, "unknown_device", f"No active device '{reading.external_id}'.")
        keyed = [(reading, found[reading.external_id], _dedup_key(reading)) for reading in readings]
        seen = _readings_seen({(device.pk, key) for _r, device, key in keyed})
        last = {device.pk: device.last_measured_at for device in found.values()}
        newest: dict[int, IncomingReading] = {}
        battery: dict[int, int] = {}
        touched: dict[int, Device] = {}
        rows, results = [], []
        for reading, device, key in keyed:
            if (device.pk, key) in seen:
                results.append("duplicate")
                continue
            seen.add((device.pk, key))
            touched[device.pk] = device
            stale = last[device.pk] is not None and reading.measured_at <= last[device.pk]
            rows.append((device.pk, device.resource_id, reading.measured_at, reading.occupied, reading.battery,
                         reading.fcnt, key, not stale))
            if stale:
                results.append("stale")
                continue
            last[device.pk] = reading.measured_at
            newest[device.pk] = reading
            if reading.battery is not None:
                battery[device.pk] = reading.battery
            results.append("applied")
        if not rows:
            return results
        _insert_readings(rows, via=via, received_at=now)
        zones = {zone.pk: zone for zone in Zone.objects.select_related("community").filter(
            pk__in={device.zone_id for device in touched.values()})}
        for device in touched.values():
            device.last_seen_at = now
            reading = newest.get(device.pk)
            if reading is None:
                continue
            device.last_measured_at = reading.measured_at
            device.silent = False
            if reading.fcnt is not None:
                device.last_fcnt = reading.fcnt
            if device.pk in battery:
                _battery_changed(device, zones[device.zone_id], battery[device.pk])
        _update_rows(Device, DEVICE_READING_FIELDS, list(touched.values()))
        moving = {found[r.external_id].resource_id: r for r in newest.values()
                  if found[r.external_id].resource_id is not None}
        # Only the spaces whose state changes are read (and locked): most readings repeat the state.
        # PostgreSQL re-checks the condition on a row another transaction changed meanwhile.
        occupied = [pk for pk, reading in moving.items() if reading.occupied]
        free = [pk for pk, reading in moving.items() if not reading.occupied]
        changes = []
        for resource in Resource.objects.select_for_update(of=("self",)).filter(
                Q(pk__in=occupied) & ~Q(occupancy="occupied") | Q(pk__in=free) & ~Q(occupancy="free")).order_by("pk"):
            reading = moving[resource.pk]
            resource.zone = zones[resource.zone_id]
            changes.append((resource, "occupied" if reading.occupied else "free", reading.measured_at))
        moved = _move_spaces(changes, now, bump=False)
        for zone in {resource.zone_id: resource.zone for resource in moved}.values():
            _bump(zone)  # one new board version per zone and batch: nobody sees in between
    return results


DEVICE_READING_FIELDS = ("last_seen_at", "last_measured_at", "silent", "last_fcnt", "battery", "low_battery")


def _update_rows(model, field_names: tuple[str, ...], objects: list) -> None:
    """These fields of these rows in one prepared UPDATE run for each (executemany): what
    `bulk_update` does, without building a CASE expression per row and field, which costs more
    than the rest of a sensor batch together."""
    if not objects:
        return
    connection = transaction.get_connection()
    quote = connection.ops.quote_name
    fields = [model._meta.get_field(name) for name in field_names]
    sql = (f"UPDATE {quote(model._meta.db_table)} SET " + ", ".join(f"{quote(f.column)} = %s" for f in fields)
           + f" WHERE {quote(model._meta.pk.column)} = %s")
    rows = [[field.get_db_prep_save(getattr(obj, field.attname), connection) for field in fields] + [obj.pk]
            for obj in objects]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _insert_readings(rows: list[tuple], *, via: str, received_at: datetime) -> None:
    """(device, space, measured at, occupied, battery, frame counter, dedup key, applied) rows in
    one prepared INSERT run for each: the ORM's bulk_create spends more time preparing each value
    of 20,000 rows than the database spends storing them."""
    connection = transaction.get_connection()
    quote = connection.ops.quote_name
    columns = ("device_id", "resource_id", "measured_at", "occupied", "battery", "fcnt", "dedup_key", "applied",
               "via", "received_at")
    sql = (f"INSERT INTO {quote(Reading._meta.db_table)} ({', '.join(quote(c) for c in columns)}) "
           f"VALUES ({', '.join(['%s'] * len(columns))})")
    adapt = connection.ops.adapt_datetimefield_value
    tail = (via, adapt(received_at))
    with connection.cursor() as cursor:
        cursor.executemany(sql, [(device, space, adapt(measured), occupied, battery, fcnt, key, applied, *tail)
                                 for device, space, measured, occupied, battery, fcnt, key, applied in rows])


def _readings_seen(pairs: set[tuple[int, str]], chunk: int = 400) -> set[tuple[int, str]]:
    """Which (device, dedup key) pairs are stored already. Asked as row values, one index probe
    per pair: `device IN (…) AND key IN (…)` makes SQLite probe every combination of the two
    lists (500 × 1,000 for a batch), which cost more than the rest of the batch together."""
    connection = transaction.get_connection()
    quote = connection.ops.quote_name
    table = quote(Reading._meta.db_table)
    device, key = quote(Reading._meta.get_field("device").column), quote(Reading._meta.get_field("dedup_key").column)
    ordered = sorted(pairs)
    seen = set()
    with connection.cursor() as cursor:
        for start in range(0, len(ordered), chunk):
            part = ordered[start:start + chunk]
            values = ", ".join(["(%s, %s)"] * len(part))
            cursor.execute(f"SELECT {device}, {key} FROM {table} WHERE ({device}, {key}) IN (VALUES {values})",
                           [value for pair in part for value in pair])
            seen.update((row[0], row[1]) for row in cursor.fetchall())
    return seen


def _dedup_key(reading: IncomingReading) -> str:
    return f"f{reading.fcnt}" if reading.fcnt is not None else f"t{reading.measured_at.isoformat()}"


def _battery_changed(device: Device, zone: Zone, battery: int) -> None:
    """Keep the level; alert the committee once when it falls below the zone's threshold, and
    re-arm when it is back 5 points above."""
    device.battery = battery
    if battery < zone.low_battery_percent and not device.low_battery:
        device.low_battery = True
        _alert_committee(zone, "sharing.low_battery", {
            "device": device.external_id, "battery": battery,
            "code": device.resource.code if device.resource_id else None})
        record_audit(actor=None, action="sharing.low_battery", obj=device, community=zone.community,
                     changes={"battery": battery})
    elif battery >= zone.low_battery_percent + 5 and device.low_battery:
        device.low_battery = False


def _set_occupancy(resource: Resource, status: str, at: datetime, now: datetime, *, bump: bool = True) -> bool:
    """Move the space to `status` (its session, fee and events follow); False when it already was."""
    return bool(_move_spaces([(resource, status, at)], now, bump=bump))


def _move_spaces(changes: list[tuple[Resource, str, datetime]], now: datetime, *, bump: bool = True) -> list[Resource]:
    """Move locked spaces (with `zone` and `zone.community` loaded) to new states together:
    sessions open and close, walk-ins are priced, violations flagged, fees posted and events
    published with a few statements for the whole list rather than a dozen per space. Returns
    the spaces that changed."""
    moved = []
    events = []
    for resource, status, at in changes:
        if resource.occupancy == status:
            continue
        zone = resource.zone
        events.append({"name": "sharing.occupancy_changed", "community": zone.community, "payload": {
            "zone": zone.slug, "code": resource.code, "status": status, "previous": resource.occupancy,
            "at": at.isoformat()}})
        resource.occupancy = status
        resource.occupancy_since = at
        moved.append((resource, status, at))
    if not moved:
        return []
    _update_rows(Resource, ("occupancy", "occupancy_since"), [resource for resource, _s, _at in moved])
    if bump:
        for zone in {resource.zone_id: resource.zone for resource, _s, _at in moved}.values():
            _bump(zone)
    rules = _RulesMemo()
    _open_sessions([(resource, at) for resource, status, at in moved if status == "occupied"], rules)
    _close_sessions([(resource, at) for resource, status, at in moved if status == "free"], rules)
    publish_events(events)
    return [resource for resource, _s, _at in moved]


class _RulesMemo:
    """The public's answer for walk-ins, with each zone's rules and holidays read once per batch."""

    def __init__(self):
        self.rules: dict[tuple[int, str], list] = {}
        self.holidays: dict[int, frozenset] = {}

    def public(self, resource: Resource, t1: datetime, t2: datetime) -> policy.Decision:
        zone = resource.zone
        key = (zone.pk, resource.kind)
        if key not in self.rules:
            self.rules[key] = selectors.rules_for(zone, resource.kind)
        if zone.pk not in self.holidays:
            self.holidays[zone.pk] = selectors.holidays_for(zone)
        return selectors.decision_for(user=None, resource=resource, t1=t1, t2=t2, check_notice=False,
                                      audiences={policy.ANYONE}, rules=self.rules[key],
                                      holidays=self.holidays[zone.pk])


def _open_sessions(opens: list[tuple[Resource, datetime]], rules: _RulesMemo) -> None:
    """A car arrived: under a booking of that space (checked in), else a walk-in, which is a
    violation where the rules keep the public out at that time (flagged, committee alerted)."""
    if not opens:
        return
    already = set(Session.objects.filter(resource_id__in=[r.pk for r, _at in opens], ended_at__isnull=True)
                  .values_list("resource_id", flat=True))
    opens = [(resource, at) for resource, at in opens if resource.pk not in already]
    if not opens:
        return
    earliest, latest = min(at for _r, at in opens), max(at for _r, at in opens)
    bookings: dict[int, list[Booking]] = {}
    for booking in Booking.objects.select_for_update(of=("self",)).select_related("user").filter(
            resource_id__in=[r.pk for r, _at in opens], status__in=["confirmed", "checked_in"],
            starts_at__lte=latest + CHECK_IN_EARLY, ends_at__gt=earliest).order_by("starts_at", "pk"):
        bookings.setdefault(booking.resource_id, []).append(booking)
    sessions = []
    for resource, at in opens:
        booking = next((b for b in bookings.get(resource.pk, ()) if b.starts_at <= at + CHECK_IN_EARLY
                        and b.ends_at > at), None)
        if booking is not None:
            booking.resource = resource
            if booking.status == Booking.Status.CONFIRMED:
                _set_status(booking, Booking.Status.CHECKED_IN, checked_in_at=at, reason="sensor")
            sessions.append(Session(resource=resource, booking=booking, started_at=at))
            continue
        violation = not resource.is_private and not rules.public(resource, at, at + timedelta(minutes=1)).allowed
        sessions.append(Session(resource=resource, started_at=at, violation=violation))
    sessions = Session.objects.bulk_create(sessions)
    violations = [session for session in sessions if session.violation]
    if not violations:
        return
    record_audits([{"actor": None, "action": "sharing.violation", "obj": session,
                    "community": session.resource.zone.community,
                    "changes": {"code": session.resource.code, "at": session.started_at.isoformat()}}
                   for session in violations])
    _alert_committee_many([(session.resource.zone, "sharing.violation", {
        "session_id": session.pk, "code": session.resource.code, "at": session.started_at.isoformat()})
        for session in violations])


def _close_sessions(closes: list[tuple[Resource, datetime]], rules: _RulesMemo) -> None:
    """A car left: its booking completes (and is charged), or its walk-in is priced at the public
    rate for the time the rules price, and the fee posted to the ledger."""
    if not closes:
        return
    open_sessions = {session.resource_id: session for session in Session.objects.select_for_update(of=("self",))
                     .filter(resource_id__in=[r.pk for r, _at in closes], ended_at__isnull=True)}
    ended, walk_ins = [], []
    for resource, at in closes:
        session = open_sessions.get(resource.pk)
        if session is None:
            continue
        session.resource = resource
        session.ended_at = max(at, session.started_at)
        ended.append(session)
        if session.booking_id:
            booking = _locked_booking(session.booking)
            if booking.status in ("checked_in", "overstay"):
                _complete_locked(booking, at)
        elif not session.violation and session.claimed_by_id is None and not resource.is_private:
            decision = rules.public(resource, session.started_at, session.ended_at)
            session.fee_amount = policy.fee_of(decision.pieces) if session.ended_at > session.started_at else 0
            if session.fee_amount:
                walk_ins.append(session)
    _update_rows(Session, ("ended_at", "fee_amount"), ended)
    _post_fees(walk_ins, what="walk_in")


def _alert_committee(zone: Zone, name: str, payload: dict) -> None:
    _alert_committee_many([(zone, name, payload)])


def _alert_committee_many(alerts: list[tuple[Zone, str, dict]]) -> None:
    """For each alert, one event on the zone's stream (the board and members see it) and a
    personal one to each committee member and organiser."""
    committees: dict[int, list] = {}
    events = []
    for zone, name, payload in alerts:
        if zone.community_id not in committees:
            committees[zone.community_id] = selectors.committee_of(zone)
        payload = {"zone": zone.slug, **payload}
        events.append({"name": name, "community": zone.community, "payload": payload})
        events += [{"name": name, "community": zone.community, "recipient": person, "payload": payload}
                   for person in committees[zone.community_id]]
    publish_events(events)


def claim_session(*, actor, session: Session) -> Session:
    """A holder (or a member with a booking elsewhere) says the car is theirs; clears a violation
    when the rules allow them there."""
    resource = session.resource
    zone = resource.zone
    permissions.require(actor, "book", zone)
    with transaction.atomic():
        locked = Session.objects.select_for_update().get(pk=session.pk)
        if locked.claimed_by_id:
            raise Conflict("This session was already claimed.", code="claimed")
        end = locked.ended_at or timezone.now()
        decision = selectors.decision_for(user=actor, resource=resource, t1=locked.started_at,
                                          t2=max(end, locked.started_at + timedelta(minutes=1)), check_notice=False)
        if not decision.allowed:
            raise PermissionDenied(f"The rules do not allow you there then. {decision.reason}")
        was = locked.violation
        locked.claimed_by = actor
        locked.violation = False
        locked.save(update_fields=["claimed_by", "violation"])
        record_audit(actor=actor, action="sharing.session_claimed", obj=locked, community=zone.community,
                     changes={"violation": [was, False]})
        publish_event(name="sharing.session_claimed", community=zone.community,
                      payload={"zone": zone.slug, "code": resource.code, "session_id": locked.pk})
        _bump(zone)
    return locked


def set_occupancy_by_hand(*, actor, resource: Resource, occupied: bool, now: datetime | None = None) -> Resource:
    """The committee corrects a space by hand (a broken sensor); same consequences as a reading."""
    zone = resource.zone
    permissions.require(actor, "decide", zone)
    now = _now(now)
    with transaction.atomic():
        locked = Resource.objects.select_for_update().select_related("zone", "zone__community").get(pk=resource.pk)
        previous = locked.occupancy
        _set_occupancy(locked, "occupied" if occupied else "free", now, now)
        record_audit(actor=actor, action="sharing.occupancy_set", obj=locked, community=zone.community,
                     changes={"occupancy": [previous, locked.occupancy]})
    return locked


# --- the sweep: holds, no-shows, overstays, silent sensors, permit renewals -------------------------

def sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Run every minute (tasks.sweep_job). Each step is idempotent."""
    now = _now(now)
    counts = {"expired": 0, "no_show": 0, "overstay": 0, "committee": 0, "silent": 0, "renewals": 0}
    with transaction.atomic():
        for booking in Booking.objects.select_for_update(of=("self",)).select_related(
                "resource__zone__community").filter(status="held", hold_expires_at__lt=now):
            _set_status(booking, Booking.Status.EXPIRED, reason="hold_lapsed")
            counts["expired"] += 1
    with transaction.atomic():
        for booking in Booking.objects.select_for_update(of=("self",)).select_related(
                "resource__zone__community").filter(status="confirmed"):
            if booking.starts_at + timedelta(minutes=booking.resource.zone.no_show_minutes) < now:
                _set_status(booking, Booking.Status.NO_SHOW)
                _bump(booking.resource.zone)
                counts["no_show"] += 1
    with transaction.atomic():
        for booking in Booking.objects.select_for_update(of=("self",)).select_related(
                "resource__zone__community", "user").filter(status__in=["checked_in", "overstay"], ends_at__lt=now):
            zone = booking.resource.zone
            grace = timedelta(minutes=zone.overstay_grace_minutes)
            if booking.status == "checked_in" and booking.ends_at + grace < now:
                _set_status(booking, Booking.Status.OVERSTAY, driver_notified_at=now)
                payload = {"zone": zone.slug, "code": booking.resource.code, "booking_id": booking.pk,
                           "ends_at": booking.ends_at.isoformat()}
                if booking.user_id:
                    publish_event(name="sharing.overstay", community=zone.community, recipient=booking.user,
                                  payload=payload)
                counts["overstay"] += 1
            elif (booking.status == "overstay" and booking.committee_notified_at is None
                  and booking.ends_at + 3 * grace < now):
                booking.committee_notified_at = now
                booking.save(update_fields=["committee_notified_at"])
                record_audit(actor=None, action="sharing.overstay_escalated", obj=booking, community=zone.community)
                _alert_committee(zone, "sharing.overstay", {"code": booking.resource.code, "booking_id": booking.pk,
                                                            "ends_at": booking.ends_at.isoformat(), "escalated": True})
                counts["committee"] += 1
    with transaction.atomic():
        for device in Device.objects.select_for_update(of=("self",)).select_related("zone__community").filter(
                silent=False, retired_at__isnull=True, last_seen_at__isnull=False):
            zone = device.zone
            if (now - device.last_seen_at).total_seconds() <= zone.sensor_silence_seconds:
                continue
            Device.objects.filter(pk=device.pk).update(silent=True)
            counts["silent"] += 1
            _alert_committee(zone, "sharing.sensor_silent", {"device": device.external_id,
                                                             "last_seen_at": device.last_seen_at.isoformat()})
            if device.resource_id:
                resource = Resource.objects.select_for_update().get(pk=device.resource_id)
                resource.zone = zone
                if resource.occupancy != "unknown":
                    previous = resource.occupancy
                    resource.occupancy = "unknown"
                    resource.occupancy_since = now
                    resource.save(update_fields=["occupancy", "occupancy_since"])
                    _bump(zone)
                    publish_event(name="sharing.occupancy_changed", community=zone.community, payload={
                        "zone": zone.slug, "code": resource.code, "status": "unknown", "previous": previous,
                        "at": now.isoformat()})
    with transaction.atomic():
        soon = now.date() + timedelta(days=14)
        for resource in Resource.objects.select_for_update(of=("self",)).select_related(
                "zone__community", "holder").filter(holder__isnull=False, holder_term_end__lte=soon,
                                                    renewal_reminded_at__isnull=True, retired_at__isnull=True):
            resource.renewal_reminded_at = now
            resource.save(update_fields=["renewal_reminded_at"])
            payload = {"code": resource.code, "term_end": resource.holder_term_end.isoformat(),
                       "holder_id": resource.holder_id}
            publish_event(name="sharing.permit_renewal_due", community=resource.zone.community,
                          recipient=resource.holder, payload={"zone": resource.zone.slug, **payload})
            _alert_committee(resource.zone, "sharing.permit_renewal_due", payload)
            counts["renewals"] += 1
    for booking in Booking.objects.select_related("resource__zone__community", "user").filter(
            status="completed", fee_amount__gt=0, fee_posted=False)[:200]:
        with transaction.atomic():
            _post_fee(booking=booking, amount=booking.fee_amount, what="booking")
    for session in Session.objects.select_related("resource__zone__community").filter(
            booking__isnull=True, fee_amount__gt=0, fee_posted=False)[:200]:
        with transaction.atomic():
            _post_fee(session=session, amount=session.fee_amount, what="walk_in")
    return counts
