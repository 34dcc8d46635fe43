"""Open formats: Atom feed of a community's public activity, preview cards, iCalendar, PWA."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime

import icalendar as ical_parser
from django.template import Context, Template
from django.test import Client, RequestFactory

from pumasi.core.events import publish_event
from pumasi.platform.feeds import CalendarItem, icalendar

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
