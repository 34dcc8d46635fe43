"""Open formats: Atom feed of a community's public activity, preview cards, iCalendar, PWA."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta

import icalendar as ical_parser
import pytest
from django.template import Context, Template
from django.test import Client, RequestFactory
from hypothesis import given, settings
from hypothesis import strategies as st

from pumasi.core.events import publish_event
from pumasi.platform.feeds import CalendarItem, escape_text, fold, icalendar

ATOM = "{http://www.w3.org/2005/Atom}"


def test_atom_feed_of_an_open_community_parses_and_has_the_required_elements(community):
    community.open_join = True
    community.save()
    publish_event(name="governance.proposal_opened", community=community, payload={})
    publish_event(name="secret.personal", community=community, recipient=community.organiser, payload={})
    answer = Client().get(f"/c/{community.slug}/feed.atom")
    assert answer.status_code == 200 and answer["Content-Type"].startswith("application/atom+xml")
    root = ET.fromstring(answer.content)
    assert root.tag == f"{ATOM}feed"
    for required in ("id", "title", "updated"):
        assert root.find(f"{ATOM}{required}") is not None and root.find(f"{ATOM}{required}").text
    assert root.find(f"{ATOM}link[@rel='self']") is not None
    entries = root.findall(f"{ATOM}entry")
    assert len(entries) == 1  # the personal event is not public
    for required in ("id", "title", "updated"):
        assert entries[0].find(f"{ATOM}{required}").text
    assert entries[0].find(f"{ATOM}author/{ATOM}name").text == community.name


def test_atom_feed_of_a_closed_community_is_not_found(community):
    assert Client().get(f"/c/{community.slug}/feed.atom").status_code == 404
    assert Client().get("/c/no-such-place/feed.atom").status_code == 404


def test_preview_card_include_renders_opengraph_and_twitter_tags():
    request = RequestFactory().get("/c/x/designs/3/")
    html = Template('{% include "platform/preview_card.html" with title=t description=d image="/media/a.png" %}').render(
        Context({"t": "Blue coat", "d": "<b>Designed</b> by a member", "request": request}))
    assert '<meta property="og:title" content="Blue coat">' in html
    assert '<meta property="og:description" content="Designed by a member">' in html
    assert '<meta property="og:image" content="http://testserver/media/a.png">' in html
    assert '<meta name="twitter:card" content="summary_large_image">' in html
    assert 'content="http://testserver/c/x/designs/3/"' in html


def test_icalendar_output_is_read_back_by_an_independent_parser():
    long_summary = "주차 공간 예약 " * 12 + "; with, commas"
    text = icalendar([
        CalendarItem(uid="booking-1@pumasi", summary=long_summary, start=datetime(2025, 3, 1, 9, tzinfo=UTC),
                     end=datetime(2025, 3, 1, 11, tzinfo=UTC), location="Doksan 4-dong"),
        CalendarItem(uid="milestone-2@pumasi", summary="Prototype", start=date(2025, 4, 2)),
    ], name="My bookings")
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))
    calendar = ical_parser.Calendar.from_ical(text)
    events = [c for c in calendar.walk() if c.name == "VEVENT"]
    assert str(events[0]["SUMMARY"]) == long_summary
    assert events[0].decoded("DTSTART") == datetime(2025, 3, 1, 9, tzinfo=UTC)
    assert events[1].decoded("DTSTART") == date(2025, 4, 2)


def test_icalendar_writer_statuses_sequence_escaping_and_calendar_properties():
    stamp = datetime(2026, 5, 1, 3, 4, 5, tzinfo=UTC)
    text = icalendar([
        CalendarItem(uid="booking-7@pumasi", summary="A2 · 골목\x07 \\ done", sequence=2, status="CANCELLED",
                     start=datetime(2026, 5, 4, 1, tzinfo=UTC), end=datetime(2026, 5, 4, 3, tzinfo=UTC),
                     description="상태: 취소됨\r\n둘째 줄; 셋째, 넷째", url="https://example.org/z/alley/",
                     created=stamp, updated=stamp, geo=(37.4698, 126.8965)),
        CalendarItem(uid="milestone-1@pumasi", summary="Prototype", start=date(2026, 5, 4), end=date(2026, 5, 6),
                     transparent=True),
    ], name="My bookings; 내 예약", now=stamp, refresh=timedelta(minutes=30), time_zone="Asia/Seoul",
        source_url="https://example.org/me/calendar/x.ics")
    assert "\x07" not in text and text.count("DTSTAMP:20260501T030405Z") == 2
    calendar = ical_parser.Calendar.from_ical(text)
    # NAME and X-WR-CALNAME are TEXT (RFC 7986 §5.1; x-props default to TEXT), so the semicolon is
    # escaped; the parser has no type for either and hands back the value as written.
    assert calendar["NAME"].to_ical() == calendar["X-WR-CALNAME"].to_ical() == "My bookings\\; 내 예약".encode()
    assert calendar["REFRESH-INTERVAL"].dt == timedelta(minutes=30) and str(calendar["X-PUBLISHED-TTL"]) == "PT30M"
    assert str(calendar["X-WR-TIMEZONE"]) == "Asia/Seoul" and str(calendar["METHOD"]) == "PUBLISH"
    cancelled, milestone = calendar.walk("VEVENT")
    assert str(cancelled["STATUS"]) == "CANCELLED" and int(cancelled["SEQUENCE"]) == 2
    assert str(cancelled["SUMMARY"]) == "A2 · 골목 \\ done"
    assert str(cancelled["DESCRIPTION"]) == "상태: 취소됨\n둘째 줄; 셋째, 넷째"
    assert cancelled.decoded("LAST-MODIFIED") == cancelled.decoded("CREATED") == stamp
    assert str(cancelled["URL"]) == "https://example.org/z/alley/"
    assert milestone.decoded("DTEND") == date(2026, 5, 6) and str(milestone["TRANSP"]) == "TRANSPARENT"
    assert str(milestone["STATUS"]) == "CONFIRMED" and int(milestone["SEQUENCE"]) == 0
    with pytest.raises(ValueError):
        icalendar([CalendarItem(uid="x", summary="x", start=date(2026, 5, 4), end=datetime(2026, 5, 5, tzinfo=UTC))],
                  name="x")
    with pytest.raises(ValueError):
        icalendar([CalendarItem(uid="x", summary="x", start=datetime(2026, 5, 4))], name="x")  # naive
    with pytest.raises(ValueError):
        icalendar([CalendarItem(uid="x", summary="x", start=date(2026, 5, 4), status="MAYBE")], name="x")
    with pytest.raises(ValueError):
        icalendar([CalendarItem(uid="x", summary="x", start=date(2026, 5, 4), end=date(2026, 5, 4))], name="x")
    injected = icalendar([CalendarItem(uid="x", summary="x", start=date(2026, 5, 4),
                                       url="https://example.org/\r\nATTACH:https://evil.example/")], name="x")
    assert "\r\nATTACH" not in injected


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=200))
def test_any_text_folds_within_75_octets_and_reads_back_unchanged(text):
    line = "SUMMARY:" + escape_text(text)
    folded = fold(line)
    assert all(len(part.encode("utf-8")) <= 75 for part in folded.split("\r\n"))
    assert folded.replace("\r\n ", "") == line
    calendar = ical_parser.Calendar.from_ical(icalendar(
        [CalendarItem(uid="u-1@pumasi", summary=text, start=date(2026, 1, 1))], name="n"))
    controls = {chr(c) for c in [*range(0x00, 0x09), *range(0x0B, 0x0D), *range(0x0E, 0x20), 0x7F]}
    expected = "".join(c for c in text.replace("\r\n", "\n").replace("\r", "\n") if c not in controls)
    assert str(calendar.walk("VEVENT")[0]["SUMMARY"]) == expected


def test_pwa_manifest_and_service_worker(client):
    manifest = client.get("/manifest.webmanifest")
    assert manifest["Content-Type"] == "application/manifest+json"
    data = json.loads(manifest.content)
    assert data["display"] == "standalone" and data["start_url"] == "/"
    sizes = {icon["sizes"] for icon in data["icons"]}
    assert {"192x192", "512x512"} <= sizes
    from django.contrib.staticfiles import finders

    for icon in data["icons"]:
        assert finders.find(icon["src"].removeprefix("/static/"))
    worker = client.get("/sw.js")
    assert worker["Content-Type"].startswith("application/javascript") and "fetch" in worker.content.decode()
    assert client.get("/offline/").status_code == 200
