"""Reads of the sharing capability: zones, spaces, the policy as the engine sees it, the board."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from pumasi.communities.models import Membership, Role
from pumasi.core.errors import NotFound
from pumasi.sharing import permissions, policy
from pumasi.sharing.models import Booking, Device, Holiday, PolicyWindow, Reading, Resource, Session, Zone


def zone_by_slug(slug: str) -> Zone:
    zone = Zone.objects.select_related("community").filter(slug=slug).first()
    if zone is None:
        raise NotFound("No such zone.")
    return zone


def zone_for(user, slug: str, action: str = "view") -> Zone:
    zone = zone_by_slug(slug)
    permissions.require(user, action, zone)
    return zone


def public_zone(user, slug: str) -> Zone:
    """A zone whose board this person may see (everyone, when the board is public)."""
    zone = zone_by_slug(slug)
    if not permissions.may_view_board(user, zone):
        raise NotFound("No such zone.")
    return zone


def zones_of(community) -> QuerySet[Zone]:
    return Zone.objects.filter(community=community).order_by("name")


def resources(zone: Zone, include_retired: bool = False) -> QuerySet[Resource]:
    found = Resource.objects.filter(zone=zone).select_related("holder")
    return found if include_retired else found.filter(retired_at__isnull=True)


def resource(zone: Zone, code: str) -> Resource:
    found = Resource.objects.select_related("zone", "zone__community", "holder").filter(zone=zone, code=code).first()
    if found is None:
        raise NotFound("No such space.")
    return found


def rules_for(zone: Zone, kind: str | None = None) -> list[policy.Rule]:
    windows = PolicyWindow.objects.filter(zone=zone)
    if kind:
        windows = windows.filter(Q(resource_kind="") | Q(resource_kind=kind))
    return [policy.rule_from_window(w) for w in windows.order_by("pk")]


def holidays_for(zone: Zone, start: date | None = None, end: date | None = None) -> frozenset[date]:
    found = Holiday.objects.filter(zone=zone)
    if start:
        found = found.filter(date__gte=start - timedelta(days=2))
    if end:
        found = found.filter(date__lte=end + timedelta(days=2))
    return frozenset(found.values_list("date", flat=True))


def is_zone_holder(user, zone: Zone) -> bool:
    """Holds a space in this zone that is shared (one who opted out keeps only their own space)."""
    if user is None or not user.is_authenticated:
        return False
    return Resource.objects.filter(zone=zone, holder=user, holder_shares=True, retired_at__isnull=True).exists()


def audiences_of(user, zone: Zone) -> set[str]:
    audiences = {policy.ANYONE}
    if user is None or not user.is_authenticated:
        return audiences
    if permissions.role_of(user, zone.community) in (Role.MEMBER, Role.COMMITTEE, Role.ORGANISER):
        audiences.add(policy.MEMBERS)
        if is_zone_holder(user, zone):
            audiences.add(policy.HOLDERS)
    return audiences


def decision_for(*, user, resource: Resource, t1: datetime, t2: datetime, now: datetime | None = None,
                 check_notice: bool = True, audiences: set[str] | None = None, rules: list | None = None,
                 holidays: frozenset | None = None) -> policy.Decision:
    """The engine's answer for this person and space, with the holder's and retired cases first.
    `rules` and `holidays` (all of the zone's), when given, save reading them again (a batch)."""
    zone = resource.zone
    if resource.retired_at is not None:
        decision = policy.Decision(allowed=False)
        decision.refuse("retired", "This space is no longer in use.")
        return decision
    if user is not None and user.is_authenticated and resource.holder_id == user.pk:
        # The holder's own space: theirs by permit, at any time, free of charge.
        return policy.Decision(allowed=t2 > t1, audience=policy.HOLDERS)
    if resource.is_private:
        decision = policy.Decision(allowed=False)
        decision.refuse("private", "Its holder does not share this space.")
        return decision
    tz_name = zone.time_zone
    tz = policy.tz_of(tz_name)
    if holidays is None:
        holidays = holidays_for(zone, t1.astimezone(tz).date(), t2.astimezone(tz).date())
    return policy.decide(
        t1=t1, t2=t2, rules=rules if rules is not None else rules_for(zone, resource.kind), tz_name=tz_name,
        holidays=holidays,
        audiences=audiences if audiences is not None else audiences_of(user, zone), now=now or timezone.now(),
        check_notice=check_notice,
    )


def committee_of(zone: Zone) -> list:
    return [m.user for m in Membership.objects.filter(
        community=zone.community, role__in=[Role.COMMITTEE, Role.ORGANISER]).select_related("user").order_by("pk")]


def bookings_of(user) -> QuerySet[Booking]:
    return Booking.objects.filter(user=user).select_related("resource", "resource__zone").order_by("-starts_at")


def bookings_for_calendar(user, *, since: datetime, limit: int = 1000) -> QuerySet[Booking]:
    """A person's own bookings ending after `since`, in the communities they belong to now (one who
    left a community stops hearing about its zones), newest first, for their calendar feed."""
    return (Booking.objects.filter(user=user, ends_at__gt=since,
                                   resource__zone__community__in=Membership.objects.filter(user=user).values("community"))
            .select_related("resource", "resource__zone").order_by("-starts_at", "-pk")[:limit])


def bookings_in(zone: Zone) -> QuerySet[Booking]:
    return Booking.objects.filter(resource__zone=zone).select_related("resource", "user").order_by("-starts_at")


def booking_for(user, booking_id: int) -> Booking:
    found = Booking.objects.select_related("resource", "resource__zone", "resource__zone__community", "user").filter(
        pk=booking_id).first()
    if found is None or not permissions.may_handle_booking(user, found):
        raise NotFound("No such booking.")
    return found


def booking_by_reference(reference: str) -> Booking:
    found = Booking.objects.select_related("resource", "resource__zone", "resource__zone__community").filter(
        reference=reference).first()
    if found is None:
        raise NotFound("No such booking.")
    return found


def devices(zone: Zone) -> QuerySet[Device]:
    return Device.objects.filter(zone=zone).select_related("resource").order_by("external_id")


def open_violations(zone: Zone) -> QuerySet[Session]:
    return Session.objects.filter(resource__zone=zone, violation=True, ended_at__isnull=True).select_related("resource")


def effective_status(resource: Resource, device: Device | None, zone: Zone, now: datetime) -> str:
    """What the board shows: a space whose sensor has gone quiet is unknown even before the sweep runs."""
    if device is None or device.last_seen_at is None:
        return resource.occupancy if device is None and resource.kind != Resource.Kind.PARKING_SPACE else "unknown"
    if (now - device.last_seen_at).total_seconds() > zone.sensor_silence_seconds:
        return "unknown"
    return resource.occupancy


def board(zone: Zone, now: datetime | None = None) -> dict:
    """Everything the entrance board shows. Private spaces (holder opted out) are shown apart
    and never counted as free for the public."""
    now = now or timezone.now()
    spaces = list(resources(zone))
    active_devices = {d.resource_id: d for d in Device.objects.filter(zone=zone, retired_at__isnull=True)}
    violations = set(open_violations(zone).values_list("resource_id", flat=True))
    tz = policy.tz_of(zone.time_zone)
    rules = rules_for(zone, Resource.Kind.PARKING_SPACE)
    holidays = holidays_for(zone, now.astimezone(tz).date(), now.astimezone(tz).date())
    covering = policy.covering_rules(now, rules, tz, holidays)
    open_to = max((r.audience for r in covering), key=lambda a: -policy.RANK[a], default=None)
    rows = []
    free = occupied = unknown = 0
    for space in spaces:
        status = effective_status(space, active_devices.get(space.pk), zone, now)
        shared = not space.is_private
        if shared:
            free += status == "free"
            occupied += status == "occupied"
            unknown += status == "unknown"
        rows.append({
            "code": space.code, "name": space.name or space.code, "status": status, "shared": shared,
            "x": space.map_x, "y": space.map_y, "violation": space.pk in violations,
            "since": space.occupancy_since.isoformat() if space.occupancy_since else None,
        })
    shared_total = sum(1 for r in rows if r["shared"])
    return {
        "zone": zone.slug, "name": zone.name, "version": zone.board_version, "updated_at": now.isoformat(),
        "total": shared_total, "free": free, "occupied": occupied, "unknown": unknown,
        "full": shared_total > 0 and free == 0, "open_to": open_to, "spaces": rows,
        "violations": len(violations),
    }


def board_version(zone_id: int) -> int:
    return Zone.objects.filter(pk=zone_id).values_list("board_version", flat=True).first() or 0


def social_value(zone: Zone, now: datetime | None = None, days: int = 28) -> dict:
    """The zone's value, computed from what happened (seed 000, Table 1 / Table 2)."""
    now = now or timezone.now()
    since = now - timedelta(days=days)
    tz = policy.tz_of(zone.time_zone)
    spaces = list(resources(zone).filter(kind=Resource.Kind.PARKING_SPACE))
    shared = [s for s in spaces if not s.is_private]
    rules = rules_for(zone, Resource.Kind.PARKING_SPACE)
    # Hours in a typical week the general public may use a space, from the rules themselves.
    week_start = (now.astimezone(tz) - timedelta(days=now.astimezone(tz).weekday())).replace(
        hour=0, minute=0, second=0, microsecond=0)
    public_pieces = policy.pieces(week_start, week_start + timedelta(days=7), rules, zone.time_zone, frozenset(),
                                  {policy.ANYONE})
    public_hours = sum((p.end - p.start).total_seconds() for p in public_pieces if p.rule is not None) / 3600 / 7
    before = len([s for s in spaces if s.holder_id]) * 24.0  # each holder's own space, all day, nobody else
    now_offered = len(shared) * (24.0 + public_hours) + (len(spaces) - len(shared)) * 24.0
    sessions = Session.objects.filter(resource__zone=zone, started_at__gte=since)
    heat = [[0.0] * 24 for _ in range(7)]
    for started, ended in sessions.values_list("started_at", "ended_at"):
        cursor = started
        end = ended or now
        while cursor < end:
            local = cursor.astimezone(tz)
            heat[local.weekday()][local.hour] += 1
            cursor += timedelta(hours=1)
    weeks = max(days / 7, 1)
    total_spaces = max(len(spaces), 1)
    heat = [[round(v / weeks / total_spaces * 100) for v in row] for row in heat]
    visitor_sessions = sessions.filter(booking__isnull=True, claimed_by__isnull=True, violation=False).count()
    visitor_bookings = Booking.objects.filter(resource__zone=zone, user__isnull=True, starts_at__gte=since).exclude(
        status__in=["cancelled", "expired"]).count()
    # Peak number of outside cars parked at once: the most the commons added beyond holders.
    outside = list(sessions.filter(Q(booking__isnull=True, claimed_by__isnull=True) | Q(booking__user__isnull=True))
                   .values_list("started_at", "ended_at"))
    edges = sorted([(s, 1) for s, _e in outside] + [(e or now, -1) for _s, e in outside])
    peak = current = 0
    for _at, step in edges:
        current += step
        peak = max(peak, current)
    violations = sessions.filter(violation=True)
    by_week = list(violations.values_list("started_at", flat=True))
    weekly: dict[str, int] = {}
    for at in by_week:
        label = at.astimezone(tz).strftime("%G-W%V")
        weekly[label] = weekly.get(label, 0) + 1
    return {
        "days": days, "space_hours_before": round(before, 1), "space_hours_now": round(now_offered, 1),
        "public_hours_per_space": round(public_hours, 1), "heat": heat,
        "visitor_sessions": visitor_sessions + visitor_bookings, "peak_extra_cars": peak,
        "construction_cost_avoided": peak * zone.construction_cost, "violations": violations.count(),
        "violations_by_week": sorted(weekly.items()),
        "fees": sum(Booking.objects.filter(resource__zone=zone, status="completed", finished_at__gte=since)
                    .values_list("fee_amount", flat=True)) + sum(sessions.values_list("fee_amount", flat=True)),
        "readings": Reading.objects.filter(device__zone=zone, received_at__gte=since).count(),
    }


def device_counts(zone: Zone) -> dict:
    return Device.objects.filter(zone=zone, retired_at__isnull=True).aggregate(
        total=Count("pk"), silent=Count("pk", filter=Q(silent=True)), low=Count("pk", filter=Q(low_battery=True)))


def upkeep_costs(zone: Zone):
    """The ledger entries of the zone's upkeep costs, newest first."""
    from pumasi.ledger.models import Transaction

    return (Transaction.objects.filter(community=zone.community, kind="sharing_upkeep", reference__zone=zone.slug)
            .select_related("actor").prefetch_related("postings__account").order_by("-seq"))


def upkeep_cost_rows(zone: Zone, limit: int = 200) -> list[dict]:
    rows = []
    for entry in upkeep_costs(zone)[:limit]:
        rows.append({"transaction_id": entry.pk, "currency": zone.community.currency,
                     "amount": sum(p.amount for p in entry.postings.all() if p.amount > 0 and p.account.type == "expense"),
                     "description": entry.reference.get("description", ""),
                     "paid_from": entry.reference.get("paid_from", ""), "created_at": entry.created_at,
                     "actor": entry.actor})
    return rows
