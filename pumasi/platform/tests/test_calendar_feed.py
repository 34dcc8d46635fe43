"""A person's private iCalendar feed of their bookings, read back with the independent `icalendar`
library: what is in it (and what never is), cancelled status, UTC times, Korean text folded at 75
octets, the revocable token, conditional GET, the settings page and the API."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta

import icalendar
import pytest
from django.test import Client
from django.utils import timezone

from pumasi.communities.models import Membership
from pumasi.platform import calendars
from pumasi.platform.feeds import escape_text
from pumasi.platform.models import AuditEntry, CalendarFeed
from pumasi.sharing import services as sharing
from pumasi.sharing.tests.conftest import SEOUL, Alley
from pumasi.tests.factories import CommunityFactory, MembershipFactory

pytestmark = pytest.mark.django_db


def _monday(weeks: int) -> datetime:
    """10:00 in Seoul on the Monday `weeks` weeks from this one (negative: in the past)."""
    today = timezone.now().astimezone(SEOUL).date()
    day = today - timedelta(days=today.weekday()) + timedelta(weeks=weeks)
    return datetime.combine(day, time(10), tzinfo=SEOUL)


def _book(alley, person, space: int, starts_at: datetime, hours: int = 2, **extra):
    return sharing.create_booking(actor=person, resource=alley.spaces[space], starts_at=starts_at,
                                  ends_at=starts_at + timedelta(hours=hours), now=starts_at - timedelta(hours=1),
                                  **extra)


def _fetch(client: Client, person, **headers):
    feed = calendars.feed_of(person) or calendars.rotate_calendar_feed(actor=person)
    return client.get(f"/me/calendar/{feed.token}.ics", headers=headers)


def _plain(page: bytes, token: str) -> str:
    """A page with the token asked for and the per-request CSRF secret blanked out."""
    return re.sub(r'(CSRFToken": "|value=")[A-Za-z0-9]{64}', r"\1-", page.decode().replace(token, "T"))


def _another_community(member_of, slug: str, *members):
    """A community with its own organiser and alley, the given people members of it."""
    community = CommunityFactory()
    community.organiser = member_of(community, "organiser")
    for person in members:
        MembershipFactory(community=community, user=person)
    return Alley(community, member_of, slug=slug)


@pytest.fixture
def alley(community, member_of):
    alley = Alley(community, member_of)
    alley.zone.address = "서울 금천구 독산로 1"
    alley.zone.save()
    return alley


def test_feed_lists_my_bookings_across_my_communities_and_nothing_else(alley, member_of):
    me, other = alley.member, alley.holder
    upcoming = _book(alley, me, 1, _monday(2))
    held = _book(alley, me, 2, _monday(2) + timedelta(hours=3), hold=True)
    cancelled = _book(alley, me, 1, _monday(3))
    sharing.cancel_booking(actor=me, booking=cancelled, now=_monday(3) - timedelta(days=1))
    done = _book(alley, me, 1, _monday(-4))
    sharing.check_in(actor=me, booking=done, now=_monday(-4))
    sharing.complete_booking(actor=me, booking=done, now=_monday(-4) + timedelta(hours=1))
    no_show = _book(alley, me, 2, _monday(-3))
    sharing.sweep(now=_monday(-3) + timedelta(minutes=30))
    too_old = _book(alley, me, 1, _monday(-15))
    someone_elses = _book(alley, other, 2, _monday(2))
    visitors = sharing.create_booking(actor=None, resource=alley.spaces[2], starts_at=_monday(4),
                                      ends_at=_monday(4) + timedelta(hours=1), visitor_name="방문자", plate="12가3456",
                                      now=_monday(4) - timedelta(hours=1))
    # A second community of mine: its bookings are in too. A third one I have left: not any more.
    there = _book(_another_community(member_of, "second-alley", me), me, 1, _monday(1))
    left = _another_community(member_of, "left-alley", me)
    gone = _book(left, me, 1, _monday(1))
    Membership.objects.filter(community=left.community, user=me).delete()

    response = _fetch(Client(), me)
    assert response.status_code == 200 and response["Content-Type"] == "text/calendar; charset=utf-8"
    calendar = icalendar.Calendar.from_ical(response.content)
    assert str(calendar["VERSION"]) == "2.0" and str(calendar["METHOD"]) == "PUBLISH"
    assert calendar["X-WR-CALNAME"].to_ical().decode() == escape_text(calendars.feed_name(me))  # kept raw by the parser
    assert calendar["REFRESH-INTERVAL"].dt == timedelta(hours=1) and str(calendar["X-PUBLISHED-TTL"]) == "PT1H"
    events = {str(e["UID"]).split("@")[0]: e for e in calendar.walk("VEVENT")}
    expected = {upcoming, held, cancelled, done, no_show, there}
    assert set(events) == {f"booking-{b.pk}" for b in expected}
    for absent in (too_old, someone_elses, visitors, gone):
        assert f"booking-{absent.pk}" not in events

    event = events[f"booking-{upcoming.pk}"]
    assert str(event["SUMMARY"]) == "A2 · Alley"
    assert str(event["LOCATION"]) == "Alley, 서울 금천구 독산로 1"
    assert str(event["URL"]) == f"http://testserver/z/{alley.zone.slug}/"
    assert event["GEO"].latitude == pytest.approx(37.4698) and event["GEO"].longitude == pytest.approx(126.8965)
    assert event.decoded("DTSTART") == upcoming.starts_at and event.decoded("DTSTART").utcoffset() == timedelta(0)
    assert event.decoded("DTEND") == upcoming.ends_at
    assert str(event["STATUS"]) == "CONFIRMED" and str(event["TRANSP"]) == "OPAQUE"
    assert event.decoded("LAST-MODIFIED") == upcoming.created_at.replace(microsecond=0)
    assert str(events[f"booking-{held.pk}"]["STATUS"]) == "TENTATIVE"
    assert str(events[f"booking-{cancelled.pk}"]["STATUS"]) == "CANCELLED"
    assert int(events[f"booking-{cancelled.pk}"]["SEQUENCE"]) > int(event["SEQUENCE"])
    assert "LAST-MODIFIED" not in events[f"booking-{cancelled.pk}"]  # no recorded time: none rather than a wrong one
    for kept in (done, no_show):
        assert str(events[f"booking-{kept.pk}"]["STATUS"]) == "CONFIRMED"
    done.refresh_from_db()
    assert done.status == "completed" and done.fee_amount > 0
    assert f"{done.fee_amount} {done.currency}" in str(events[f"booking-{done.pk}"]["DESCRIPTION"])
    assert str(events[f"booking-{there.pk}"]["URL"]).endswith("/z/second-alley/")
    # Times are UTC with Z in the text itself, not merely parseable.
    raw = response.content.decode().split("\r\n")
    assert "DTSTART:" + upcoming.starts_at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ") in raw
    times = [line for line in raw if line.startswith(("DTSTART", "DTEND", "DTSTAMP", "CREATED", "LAST-MODIFIED"))]
    assert len(times) >= 4 * len(expected) and all(line.endswith("Z") and ";" not in line for line in times)
    # UIDs are stable from one fetch to the next (clients update rather than duplicate).
    again = icalendar.Calendar.from_ical(_fetch(Client(), me).content)
    assert {str(e["UID"]) for e in again.walk("VEVENT")} == {str(e["UID"]) for e in calendar.walk("VEVENT")}


def test_korean_text_is_folded_at_75_octets_and_reads_back_whole(alley):
    alley.member.language = "ko"
    alley.member.display_name = "김민지"
    alley.member.save()
    alley.zone.name = "독산4동 주민자치회 공영주차장 골목 안쪽 나눔 주차 구역 (금천구청 뒤편, 초록 대문 옆)"
    alley.zone.save()
    booking = _book(alley, alley.member, 1, _monday(1))
    response = _fetch(Client(), alley.member)
    raw = response.content
    assert raw.endswith(b"\r\n") and b"\n" not in raw.replace(b"\r\n", b"")
    lines = raw.split(b"\r\n")
    assert all(len(line) <= 75 for line in lines)
    assert any(line.startswith(b" ") for line in lines), "the long Korean lines were folded"
    for line in lines:
        line.decode("utf-8")  # no fold falls inside a character
    event = icalendar.Calendar.from_ical(raw).walk("VEVENT")[0]
    assert str(event["SUMMARY"]) == f"A2 · {alley.zone.name}"
    assert str(event["LOCATION"]) == f"{alley.zone.name}, 서울 금천구 독산로 1"
    assert str(event["DESCRIPTION"]).startswith("상태: 확정")
    assert icalendar.Calendar.from_ical(raw)["X-WR-CALNAME"].to_ical().decode() == "김민지님의 예약 (품앗이)"
    assert booking.pk


def test_rotated_turned_off_and_wrong_tokens_are_404_and_say_nothing(alley):
    me = alley.member
    _book(alley, me, 1, _monday(1))
    client = Client()
    first = calendars.rotate_calendar_feed(actor=me)
    old = first.token
    assert client.get(f"/me/calendar/{old}.ics").status_code == 200
    rotated = calendars.rotate_calendar_feed(actor=me)
    assert rotated.token != old and rotated.rotated_at is not None
    wrong = client.get("/me/calendar/not-a-token.ics")
    revoked = client.get(f"/me/calendar/{old}.ics")
    assert wrong.status_code == revoked.status_code == 404
    # The same page either way (the not-found page repeats the path asked for, nothing more).
    assert _plain(wrong.content, "not-a-token") == _plain(revoked.content, old)
    assert b"A2" not in revoked.content and b"BEGIN:VCALENDAR" not in revoked.content
    assert client.get(f"/me/calendar/{rotated.token}.ics").status_code == 200
    assert calendars.turn_off_calendar_feed(actor=me) is True
    assert client.get(f"/me/calendar/{rotated.token}.ics").status_code == 404
    assert calendars.turn_off_calendar_feed(actor=me) is False
    actions = list(AuditEntry.objects.filter(actor=me, action__startswith="calendar_feed.").values_list("action", flat=True)
                   .order_by("pk"))
    assert actions == ["calendar_feed.created", "calendar_feed.rotated", "calendar_feed.turned_off"]
    # A deactivated account's feed goes dark too.
    again = calendars.rotate_calendar_feed(actor=me)
    me.is_active = False
    me.save()
    assert client.get(f"/me/calendar/{again.token}.ics").status_code == 404


def test_conditional_get_answers_304_until_a_booking_changes(alley):
    me = alley.member
    booking = _book(alley, me, 1, _monday(2))
    client = Client()
    first = _fetch(client, me)
    etag = first["ETag"]
    assert etag and first["Cache-Control"] == "private, max-age=300"
    unchanged = _fetch(client, me, if_none_match=etag)
    assert unchanged.status_code == 304 and unchanged.content == b"" and unchanged["ETag"] == etag
    sharing.cancel_booking(actor=me, booking=booking, now=_monday(1))
    changed = _fetch(client, me, if_none_match=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag
    assert str(icalendar.Calendar.from_ical(changed.content).walk("VEVENT")[0]["STATUS"]) == "CANCELLED"


def test_settings_page_makes_shows_rotates_and_turns_off_the_link(alley):
    me = alley.member
    client = Client()
    client.force_login(me)
    page = client.get("/me/calendar/")
    assert page.status_code == 200 and not CalendarFeed.objects.filter(user=me).exists()
    assert "no-store" in page["Cache-Control"]
    assert client.post("/me/calendar/", {"op": "rotate"}).status_code == 302
    token = CalendarFeed.objects.get(user=me).token
    shown = client.get("/me/calendar/").content.decode()
    assert f'value="http://testserver/me/calendar/{token}.ics"' in shown and 'for="calendar-url"' in shown
    client.post("/me/calendar/", {"op": "rotate"})
    assert CalendarFeed.objects.get(user=me).token != token
    assert Client().get(f"/me/calendar/{token}.ics").status_code == 404
    client.post("/me/calendar/", {"op": "off"})
    assert not CalendarFeed.objects.filter(user=me).exists()
    assert 'href="/me/calendar/"' in client.get("/notifications/").content.decode()
    assert Client().get("/me/calendar/").status_code == 302  # signed out: to the sign-in page


def test_api_reads_rotates_and_turns_off_my_calendar_url(alley, api_client_for):
    me = alley.member
    _book(alley, me, 1, _monday(1))
    api = api_client_for(me)
    assert api.get("/api/v1/me/calendar").json() == {"url": None, "created_at": None, "rotated_at": None}
    made = api.post("/api/v1/me/calendar/rotate")
    assert made.status_code == 200
    url = made.json()["url"]
    assert url.startswith("http://testserver/me/calendar/") and url.endswith(".ics")
    assert api.get("/api/v1/me/calendar").json()["url"] == url
    assert Client().get(url.removeprefix("http://testserver")).status_code == 200
    renewed = api.post("/api/v1/me/calendar/rotate").json()
    assert renewed["url"] != url and renewed["rotated_at"] is not None
    assert Client().get(url.removeprefix("http://testserver")).status_code == 404
    reader = api_client_for(me, scopes=["read"])
    assert reader.get("/api/v1/me/calendar").json()["url"] == renewed["url"]
    refused = reader.post("/api/v1/me/calendar/rotate")
    assert refused.status_code == 403 and refused["Content-Type"] == "application/problem+json"
    assert reader.delete("/api/v1/me/calendar").status_code == 403
    assert api.get("/api/v1/me/calendar").json()["url"] == renewed["url"]  # the refusals changed nothing
    assert Client().get("/api/v1/me/calendar").status_code == 401
    assert Client().post("/api/v1/me/calendar/rotate").status_code == 401
    assert api.delete("/api/v1/me/calendar").status_code == 204
    assert api.get("/api/v1/me/calendar").json()["url"] is None
    assert Client().get(renewed["url"].removeprefix("http://testserver")).status_code == 404
    # Someone else's URL never shows up in my answers, and mine never in theirs.
    other = api_client_for(alley.holder)
    theirs = other.post("/api/v1/me/calendar/rotate").json()["url"]
    mine = api.post("/api/v1/me/calendar/rotate").json()["url"]
    assert theirs != mine and api.get("/api/v1/me/calendar").json()["url"] == mine
