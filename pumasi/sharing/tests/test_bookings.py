"""Bookings: who may book when and at what price, the lifecycle, and no double booking ever
(50 parallel clients on the same slot, on whichever database the suite runs on)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from pumasi.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from pumasi.platform.models import AuditEntry, Event
from pumasi.sharing import services
from pumasi.sharing.models import Booking
from pumasi.sharing.tests.conftest import SEOUL, Alley, seoul

NOW = seoul(2026, 5, 11, 8, 0)  # a Monday morning


def test_member_books_by_day_and_pays_the_hourly_fee(alley):
    booking = services.create_booking(actor=alley.member, resource=alley.spaces[1], starts_at=seoul(2026, 5, 11, 10),
                                      ends_at=seoul(2026, 5, 11, 12, 30), now=NOW)
    assert booking.status == "confirmed" and booking.fee_amount == 3000 and booking.user == alley.member
    assert AuditEntry.objects.filter(action="sharing.booking_created", object_id=str(booking.pk)).exists()
    assert Event.objects.filter(name="sharing.booking_created", payload__booking_id=booking.pk).exists()


def test_visitor_without_account_books_where_allowed(alley):
    booking = services.create_booking(actor=None, resource=alley.spaces[1], starts_at=seoul(2026, 5, 11, 10),
                                      ends_at=seoul(2026, 5, 11, 11), visitor_name="방문자", plate="12가3456", now=NOW)
    assert booking.user is None and booking.plate == "12가3456" and booking.fee_amount == 1200
    assert len(booking.reference) >= 16


def test_visitor_must_say_who_and_nothing_is_written(alley):
    with pytest.raises(InvalidInput) as refused:
        services.create_booking(actor=None, resource=alley.spaces[1], starts_at=seoul(2026, 5, 11, 10),
                                ends_at=seoul(2026, 5, 11, 11), visitor_name="", now=NOW)
    assert set(refused.value.field_errors) == {"visitor_name", "visitor_phone"}
    assert not Booking.objects.exists()


def test_visitors_refused_where_the_zone_does_not_allow_them(alley):
    alley.zone.allow_visitors = False
    alley.zone.save()
    with pytest.raises(PermissionDenied):
        services.create_booking(actor=None, resource=alley.spaces[1], starts_at=seoul(2026, 5, 11, 10),
                                ends_at=seoul(2026, 5, 11, 11), visitor_name="x", plate="12가3456", now=NOW)


def test_night_is_for_holders_and_the_refusal_names_the_rule(alley):
    with pytest.raises(InvalidInput) as refused:
        services.create_booking(actor=alley.member, resource=alley.spaces[1], starts_at=seoul(2026, 5, 11, 20),
                                ends_at=seoul(2026, 5, 11, 23), now=NOW)
    assert refused.value.code == "policy_audience" and "Night" in refused.value.message
    night = services.create_booking(actor=alley.holder, resource=alley.spaces[1], starts_at=seoul(2026, 5, 11, 20),
                                    ends_at=seoul(2026, 5, 12, 7), now=NOW)
    assert night.fee_amount == 0 and night.audience == "holders"


def test_holder_uses_own_space_any_time_and_opting_out_makes_it_private(alley):
    own = alley.spaces[0]
    mine = services.create_booking(actor=alley.holder, resource=own, starts_at=seoul(2026, 5, 17, 3),
                                   ends_at=seoul(2026, 5, 17, 23), now=NOW)
    assert mine.fee_amount == 0
    theirs = services.create_booking(actor=alley.member, resource=own, starts_at=seoul(2026, 5, 12, 10),
                                     ends_at=seoul(2026, 5, 12, 11), now=NOW)
    services.set_sharing(actor=alley.holder, resource=own, shares=False, now=NOW)
    theirs.refresh_from_db()
    mine.refresh_from_db()
    assert theirs.status == "cancelled" and mine.status == "confirmed"
    assert Event.objects.filter(name="sharing.booking_cancelled", recipient=alley.member).exists()
    with pytest.raises(InvalidInput) as refused:
        services.create_booking(actor=alley.member, resource=own, starts_at=seoul(2026, 5, 12, 10),
                                ends_at=seoul(2026, 5, 12, 11), now=NOW)
    assert refused.value.code == "policy_private"
    # An opted-out holder is no longer a holder of the shared spaces at night.
    with pytest.raises(InvalidInput):
        services.create_booking(actor=alley.holder, resource=alley.spaces[1], starts_at=seoul(2026, 5, 12, 20),
                                ends_at=seoul(2026, 5, 12, 22), now=NOW)
    with pytest.raises(PermissionDenied):
        services.set_sharing(actor=alley.member, resource=own, shares=True)
    services.set_sharing(actor=alley.holder, resource=own, shares=True, now=NOW)
    assert AuditEntry.objects.filter(action="sharing.holder_opted_in").count() == 1


@pytest.mark.parametrize(("start", "end", "field", "code"), [
    (seoul(2026, 5, 11, 6), seoul(2026, 5, 11, 7), "starts_at", "invalid_input"),  # in the past
    (seoul(2026, 5, 11, 10), seoul(2026, 5, 11, 15), "starts_at", "policy_too_long"),
    (seoul(2026, 5, 11, 11), seoul(2026, 5, 11, 10), "ends_at", "invalid_input"),
    (seoul(2026, 5, 11, 10), seoul(2026, 5, 20, 10), "ends_at", "invalid_input"),
])
def test_bad_bookings_are_refused_saying_why(alley, start, end, field, code):
    with pytest.raises(InvalidInput) as refused:
        services.create_booking(actor=alley.member, resource=alley.spaces[1], starts_at=start, ends_at=end, now=NOW)
    assert field in refused.value.field_errors and refused.value.code == code
    assert not Booking.objects.exists()


def test_outsiders_cannot_book_members_only_zones(alley, make_user):
    alley.zone.allow_visitors = False
    alley.zone.save()
    with pytest.raises(NotFound):
        services.create_booking(actor=make_user(), resource=alley.spaces[1], starts_at=seoul(2026, 5, 11, 10),
                                ends_at=seoul(2026, 5, 11, 11), now=NOW)


def test_overlap_is_refused_and_touching_is_fine(alley):
    space = alley.spaces[1]
    services.create_booking(actor=alley.member, resource=space, starts_at=seoul(2026, 5, 11, 10),
                            ends_at=seoul(2026, 5, 11, 12), now=NOW)
    with pytest.raises(Conflict) as clash:
        services.create_booking(actor=alley.holder, resource=space, starts_at=seoul(2026, 5, 11, 11),
                                ends_at=seoul(2026, 5, 11, 13), now=NOW)
    assert clash.value.code == "overlap" and "10:00" in clash.value.message
    after = services.create_booking(actor=alley.holder, resource=space, starts_at=seoul(2026, 5, 11, 12),
                                    ends_at=seoul(2026, 5, 11, 13), now=NOW)
    assert after.status == "confirmed"


def test_lifecycle_hold_confirm_checkin_complete(alley):
    space = alley.spaces[1]
    held = services.create_booking(actor=alley.member, resource=space, starts_at=seoul(2026, 5, 11, 10),
                                   ends_at=seoul(2026, 5, 11, 11), hold=True, now=NOW)
    assert held.status == "held" and held.hold_expires_at == NOW + timedelta(minutes=10)
    services.confirm_booking(actor=alley.member, booking=held, now=NOW + timedelta(minutes=5))
    with pytest.raises(Conflict):
        services.check_in(actor=alley.member, booking=held, now=seoul(2026, 5, 11, 9, 30))
    services.check_in(actor=alley.member, booking=held, now=seoul(2026, 5, 11, 9, 50))
    done = services.complete_booking(actor=alley.member, booking=held, now=seoul(2026, 5, 11, 10, 55))
    assert done.status == "completed" and done.fee_amount == 1200
    # Posted to the ledger, split 50 % upkeep / 20 % community / 30 % to the one sharing holder.
    from pumasi.ledger.models import Transaction

    entry = Transaction.objects.get(idempotency_key=f"sharing:booking:{done.pk}")
    postings = {p.account.code: p.amount for p in entry.postings.select_related("account")}
    assert postings == {f"member:{alley.member.pk}": 1200, "sharing:alley:upkeep": -600, "income": -240,
                        f"member:{alley.holder.pk}": -360}
    done.refresh_from_db()
    assert done.fee_posted
    assert list(AuditEntry.objects.filter(object_id=str(done.pk), object_type="sharing.booking")
                .values_list("action", flat=True)) == [
        "sharing.booking_created", "sharing.booking_confirmed", "sharing.booking_checked_in",
        "sharing.booking_completed"]


def test_sweep_lapses_holds_marks_no_shows_and_escalates_overstays(alley):
    space, other = alley.spaces[1], alley.spaces[2]
    held = services.create_booking(actor=alley.member, resource=space, starts_at=seoul(2026, 5, 11, 10),
                                   ends_at=seoul(2026, 5, 11, 11), hold=True, now=NOW)
    absent = services.create_booking(actor=alley.member, resource=other, starts_at=seoul(2026, 5, 11, 9),
                                     ends_at=seoul(2026, 5, 11, 10), now=NOW)
    late = services.create_booking(actor=alley.member, resource=space, starts_at=seoul(2026, 5, 11, 12),
                                   ends_at=seoul(2026, 5, 11, 13), now=NOW)
    services.sweep(now=NOW + timedelta(minutes=11))
    held.refresh_from_db()
    assert held.status == "expired"
    with pytest.raises(Conflict):
        services.confirm_booking(actor=alley.member, booking=held, now=NOW + timedelta(minutes=12))
    services.sweep(now=seoul(2026, 5, 11, 9, 16))
    absent.refresh_from_db()
    assert absent.status == "no_show"
    services.check_in(actor=alley.member, booking=late, now=seoul(2026, 5, 11, 12))
    assert services.sweep(now=seoul(2026, 5, 11, 13, 5))["overstay"] == 0  # inside the grace
    assert services.sweep(now=seoul(2026, 5, 11, 13, 11))["overstay"] == 1
    late.refresh_from_db()
    assert late.status == "overstay"
    assert Event.objects.filter(name="sharing.overstay", recipient=alley.member).count() == 1
    assert services.sweep(now=seoul(2026, 5, 11, 13, 31))["committee"] == 1
    assert Event.objects.filter(name="sharing.overstay", recipient=alley.chief).count() == 1
    assert services.sweep(now=seoul(2026, 5, 11, 13, 40))["committee"] == 0  # once only
    done = services.complete_booking(actor=alley.member, booking=late, now=seoul(2026, 5, 11, 14))
    assert done.fee_amount == 2400  # the booked hour plus the overstayed hour at the public rate


def test_cancel_by_visitor_reference(alley):
    booking = services.create_booking(actor=None, resource=alley.spaces[1], starts_at=seoul(2026, 5, 11, 10),
                                      ends_at=seoul(2026, 5, 11, 11), visitor_name="v", visitor_phone="010-1234-5678",
                                      now=NOW)
    with pytest.raises(NotFound):
        services.cancel_booking(actor=None, booking=booking, reference="wrong", now=NOW)
    services.cancel_booking(actor=None, booking=booking, reference=booking.reference, now=NOW)
    booking.refresh_from_db()
    assert booking.status == "cancelled"


def test_the_database_refuses_overlap_even_past_the_service(alley):
    """The exclusion constraint on PostgreSQL. On SQLite the guarantee is the serialised write
    (test_fifty_clients_one_slot), so here only the PostgreSQL constraint can be shown."""
    space = alley.spaces[1]
    fields = {"resource": space, "user": alley.member, "starts_at": seoul(2026, 6, 1, 10), "ends_at": seoul(2026, 6, 1, 12)}
    Booking.objects.create(reference="a" * 20, **fields)
    second = {**fields, "starts_at": seoul(2026, 6, 1, 11), "ends_at": seoul(2026, 6, 1, 13)}
    if connection.vendor == "postgresql":
        with pytest.raises(IntegrityError), transaction.atomic():
            Booking.objects.create(reference="b" * 20, **second)
        # A cancelled booking no longer holds the slot.
        Booking.objects.create(reference="c" * 20, status="cancelled", **second)
    else:
        with pytest.raises(Conflict):
            services.create_booking(actor=alley.holder, resource=space, starts_at=second["starts_at"],
                                    ends_at=second["ends_at"], now=NOW)


@pytest.mark.django_db(transaction=True)
def test_fifty_clients_one_slot(community, member_of):
    alley = Alley(community, member_of, slug="race")
    people = [member_of(community, "member") for _ in range(50)]
    start = timezone.now().astimezone(SEOUL).replace(hour=10, minute=0, second=0, microsecond=0) + timedelta(days=1)
    while start.weekday() == 6:
        start += timedelta(days=1)
    space = alley.spaces[2]
    barrier = threading.Barrier(50)
    outcomes: list[str] = []
    lock = threading.Lock()

    def book(person):
        from django.db import connections

        try:
            barrier.wait()
            services.create_booking(actor=person, resource=space, starts_at=start, ends_at=start + timedelta(hours=1))
            result = "won"
        except Conflict:
            result = "conflict"
        except Exception as exc:  # anything else is a failure of the guarantee or of the service
            result = f"error: {exc!r}"
        finally:
            connections.close_all()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=book, args=(person,)) for person in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(set(outcomes)) == ["conflict", "won"], outcomes
    assert outcomes.count("won") == 1
    assert Booking.objects.filter(resource=space, status__in=Booking.LIVE).count() == 1
