"""The workspace milestone feed on the shared iCalendar writer: calendar properties, UIDs that do
not depend on the host name it was fetched through, conditional GET, revocation through the API."""

from __future__ import annotations

from datetime import date, timedelta

import icalendar
import pytest
from django.test import Client

from pumasi.cocreation import services

pytestmark = pytest.mark.django_db


def test_workspace_feed_properties_stable_uids_and_conditional_get(community, workspace, settings):
    settings.PUMASI_SITE_URL = "https://pumasi.example.org"
    milestone = services.add_milestone(actor=community.organiser, workspace=workspace, title="시제품, 1차",
                                       starts_on=date(2026, 3, 2), due_on=date(2026, 3, 6))
    path = f"/cocreation/calendar/{workspace.pk}/{workspace.calendar_token}.ics"
    first = Client().get(path, HTTP_HOST="localhost")
    assert first.status_code == 200 and first["ETag"] and "private" in first["Cache-Control"]
    calendar = icalendar.Calendar.from_ical(first.content)
    assert calendar["X-WR-CALNAME"].to_ical() == b"New jacket"
    assert str(calendar["X-WR-TIMEZONE"]) == community.time_zone
    assert calendar["REFRESH-INTERVAL"].dt == timedelta(hours=1)
    event = calendar.walk("VEVENT")[0]
    assert str(event["UID"]) == f"milestone-{milestone.pk}@pumasi.example.org"
    assert str(event["SUMMARY"]) == "시제품, 1차" and str(event["TRANSP"]) == "TRANSPARENT"
    assert event.decoded("LAST-MODIFIED") == milestone.updated_at.replace(microsecond=0)
    other_host = icalendar.Calendar.from_ical(Client().get(path, HTTP_HOST="127.0.0.1").content)
    assert str(other_host.walk("VEVENT")[0]["UID"]) == str(event["UID"])

    assert Client().get(path, HTTP_HOST="localhost", HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
    services.update_milestone(actor=community.organiser, milestone=milestone, done=True)
    changed = Client().get(path, HTTP_HOST="localhost", HTTP_IF_NONE_MATCH=first["ETag"])
    assert changed.status_code == 200 and changed["ETag"] != first["ETag"]
    event = icalendar.Calendar.from_ical(changed.content).walk("VEVENT")[0]
    assert str(event["SUMMARY"]).endswith("✓") and int(event["SEQUENCE"]) == 1


def test_workspace_feed_url_rotated_through_the_api_kills_the_old_one(community, workspace, api_client_for):
    api = api_client_for(community.organiser)
    base = f"/api/v1/communities/{community.slug}/workspaces/{workspace.pk}/calendar"
    old = api.get(base).json()["url"].removeprefix("http://testserver")
    assert Client().get(old).status_code == 200
    new = api.post(base + "/revoke").json()["url"].removeprefix("http://testserver")
    assert new != old and Client().get(old).status_code == 404
    assert icalendar.Calendar.from_ical(Client().get(new).content)["VERSION"] == "2.0"
