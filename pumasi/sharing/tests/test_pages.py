"""The pages: the public board (and its long poll), the zone page, booking as a visitor, the
NGSI-LD output, the demo seed (twice: idempotent)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from pumasi.sharing import services
from pumasi.sharing.models import Booking, Resource, Zone


def test_public_board_page_fragment_and_json(alley):
    client = Client()
    at = timezone.now() - timedelta(minutes=3)
    for index, code in enumerate(["A1", "A2", "A3"]):
        services.ingest(via="http", reading=services.IncomingReading(f"alley-{code.lower()}", True, at, fcnt=index))
    page = client.get("/z/alley/board")
    assert page.status_code == 200
    assert "만차 FULL" in page.content.decode()
    fragment = client.get("/z/alley/board/fragment").content.decode()
    assert 'data-code="A2" data-status="occupied"' in fragment
    data = client.get("/api/v1/sharing/zones/alley/board").json()
    assert data["full"] is True and data["free"] == 0 and len(data["spaces"]) == 3
    alley.zone.public_board = False
    alley.zone.save()
    assert client.get("/z/alley/board").status_code == 404
    assert client.get("/api/v1/sharing/zones/alley/board").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_board_long_poll_answers_when_a_reading_lands(community, member_of):
    from pumasi.sharing.tests.conftest import Alley

    alley = Alley(community, member_of, slug="poll")
    version = Zone.objects.get(pk=alley.zone.pk).board_version

    def later():
        import time

        from django.db import connections

        time.sleep(0.5)
        services.ingest(via="http", reading=services.IncomingReading("poll-a2", True, timezone.now(), fcnt=1))
        connections.close_all()

    threading.Thread(target=later).start()
    started = timezone.now()
    answer = Client().get(f"/z/poll/board/wait?v={version}").json()
    waited = (timezone.now() - started).total_seconds()
    assert answer["changed"] is True and answer["version"] > version
    assert 0.4 < waited < 3


def test_ngsi_ld_parking_spots_and_group(alley):
    services.ingest(via="http", reading=services.IncomingReading("alley-a2", True, timezone.now(), fcnt=1))
    services.set_sharing(actor=alley.holder, resource=alley.spaces[0], shares=False)
    response = Client().get("/api/v1/sharing/ngsi-ld/zones/alley/entities?type=ParkingSpot")
    assert response["Content-Type"] == "application/ld+json"
    spots = {e["id"]: e for e in response.json()}
    a2 = spots["urn:ngsi-ld:ParkingSpot:alley:A2"]
    assert a2["type"] == "ParkingSpot" and a2["status"]["type"] == "Property" and a2["status"]["value"] == "occupied"
    assert a2["location"] == {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [126.8965, 37.4698]}}
    assert a2["refParkingGroup"] == {"type": "Relationship", "object": "urn:ngsi-ld:ParkingGroup:alley"}
    assert spots["urn:ngsi-ld:ParkingSpot:alley:A1"]["status"]["value"] == "closed"
    assert spots["urn:ngsi-ld:ParkingSpot:alley:A3"]["status"]["value"] == "unknown"
    simple = Client().get("/api/v1/sharing/ngsi-ld/zones/alley/entities?type=ParkingSpot&options=keyValues").json()
    assert {e["id"]: e["status"] for e in simple}["urn:ngsi-ld:ParkingSpot:alley:A2"] == "occupied"
    group = Client().get("/api/v1/sharing/ngsi-ld/zones/alley/entities?type=ParkingGroup&options=keyValues").json()
    assert group[0]["totalSpotNumber"] == 2 and group[0]["availableSpotNumber"] == 0
    assert Client().get("/api/v1/sharing/ngsi-ld/zones/alley/entities?type=Car").status_code == 400


def test_visitor_books_on_the_page_and_cancels_with_the_reference(alley):
    client = Client()
    start = (timezone.now() + timedelta(days=1)).astimezone(alley.zone and __import__("zoneinfo").ZoneInfo(
        "Asia/Seoul")).replace(hour=10, minute=0, second=0, microsecond=0)
    while start.weekday() == 6:
        start += timedelta(days=1)
    form = {"code": "A2", "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
            "ends_at": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"), "visitor_name": "방문자"}
    refused = client.post("/z/alley/book", form)
    assert refused.status_code == 200 and "phone number or a car plate" in refused.content.decode()
    assert not Booking.objects.exists()
    done = client.post("/z/alley/book", {**form, "plate": "34나5678"})
    booking = Booking.objects.get()
    assert done.status_code == 302 and done["Location"] == f"/z/booking/{booking.reference}"
    assert client.get(done["Location"]).status_code == 200
    client.post(done["Location"])
    booking.refresh_from_db()
    assert booking.status == "cancelled"


def test_zone_page_for_members_and_holder_opt_out(alley):
    client = Client()
    client.force_login(alley.holder)
    page = client.get("/z/alley/")
    assert page.status_code == 200 and "A1" in page.content.decode()
    client.post("/z/alley/spaces/A1/sharing", {"shares": "0"})
    assert Resource.objects.get(pk=alley.spaces[0].pk).holder_shares is False
    client.force_login(alley.member)
    client.post("/z/alley/spaces/A1/sharing", {"shares": "1"})
    assert Resource.objects.get(pk=alley.spaces[0].pk).holder_shares is False
    assert client.get("/z/alley/value").status_code == 200


def test_api_booking_and_decision(alley, api_client_for):
    api = api_client_for(alley.member)
    start = (timezone.now() + timedelta(days=2)).astimezone(__import__("zoneinfo").ZoneInfo("Asia/Seoul")).replace(
        hour=20, minute=0, second=0, microsecond=0)
    body = {"code": "A2", "starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=1)).isoformat()}
    refused = api.post("/api/v1/sharing/zones/alley/bookings", body, content_type="application/json")
    assert refused.status_code == 422 and refused.json()["code"] == "policy_audience"
    quote = api.get("/api/v1/sharing/zones/alley/decision", {"code": "A2", "starts_at": body["starts_at"],
                                                              "ends_at": body["ends_at"]})
    assert quote.status_code == 200 and quote.json()["allowed"] is False
    holder_api = api_client_for(alley.holder)
    made = holder_api.post("/api/v1/sharing/zones/alley/bookings", body, content_type="application/json")
    assert made.status_code == 201 and made.json()["fee_amount"] == 0
    clash = holder_api.post("/api/v1/sharing/zones/alley/bookings", body, content_type="application/json")
    assert clash.status_code == 409 and clash.json()["code"] == "overlap"
    mine = holder_api.get("/api/v1/sharing/bookings").json()["items"]
    cancel = holder_api.post(f"/api/v1/sharing/bookings/{mine[0]['id']}/cancel")
    assert cancel.status_code == 200 and cancel.json()["status"] == "cancelled"
    bad = api.post("/api/v1/sharing/zones/alley/windows", {"name": "x", "days": ["Mon"], "start_time": "17:00",
                                                           "end_time": "20:00", "audience": "holders"},
                   content_type="application/json")
    assert bad.status_code == 403
    chief_api = api_client_for(alley.chief)
    contradict = chief_api.post("/api/v1/sharing/zones/alley/windows", {
        "name": "Evening", "days": ["Mon"], "start_time": "17:00", "end_time": "20:00", "audience": "holders"},
        content_type="application/json")
    assert contradict.status_code == 422 and contradict.json()["code"] == "contradictory_policy"


def test_demo_seed_is_idempotent(db):
    from pumasi.communities import demo as community_demo
    from pumasi.sharing import demo

    world = community_demo.seed()
    demo.seed(world)
    counts = (Zone.objects.count(), Resource.objects.count(), Booking.objects.count())
    demo.seed(world)
    assert (Zone.objects.count(), Resource.objects.count(), Booking.objects.count()) == counts
    alley = Zone.objects.get(slug="siheung-126")
    shared = Resource.objects.filter(zone=alley).exclude(holder__isnull=False, holder_shares=False).count()
    assert shared == 14 and Resource.objects.filter(zone=alley).count() == 15
    from pumasi.sharing.selectors import board

    shown = board(alley)
    assert shown["total"] == 14 and any(s["status"] == "unknown" for s in shown["spaces"])
