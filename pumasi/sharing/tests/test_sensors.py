"""Sensor traffic, one test per format with realistic payloads, and what readings mean:
walk-ins, night violations, check-in by sensor, silence, low battery, de-duplication, order."""

from __future__ import annotations

import json
from datetime import UTC, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from pumasi.platform.models import Event
from pumasi.sharing import selectors, services
from pumasi.sharing.models import Booking, IngestRejection, Reading, Resource, Session
from pumasi.sharing.tests.conftest import SEOUL


def past_day_at(hour: int, *, weekday_ok=lambda d: d < 6):
    """The latest instant before now at `hour`:00 Seoul time on a day that passes weekday_ok."""
    moment = timezone.now().astimezone(SEOUL).replace(hour=hour, minute=0, second=0, microsecond=0)
    while moment > timezone.now() - timedelta(hours=3) or not weekday_ok(moment.weekday()):
        moment -= timedelta(days=1)
    return moment


def signed_post(client: Client, body: dict, secret: str, signature: str | None = None):
    raw = json.dumps(body).encode()
    return client.post("/api/v1/sharing/readings", raw, content_type="application/json",
                       HTTP_X_PUMASI_SIGNATURE=signature or services.sign(secret, raw))


def reading(alley, code, occupied, at, seq=None, battery=None):
    body = {"device": alley.devices[code].external_id, "occupied": occupied, "measured_at": at.isoformat()}
    if seq is not None:
        body["seq"] = seq
    if battery is not None:
        body["battery"] = battery
    return body


def test_signed_http_reading_opens_and_closes_a_walk_in_with_its_fee(alley):
    client = Client()
    start = past_day_at(10)
    response = signed_post(client, reading(alley, "A2", True, start, seq=1, battery=90), alley.secrets["A2"])
    assert response.status_code == 202 and response.json() == {"result": "applied", "device": "alley-a2"}
    space = Resource.objects.get(pk=alley.spaces[1].pk)
    assert space.occupancy == "occupied"
    session = Session.objects.get(resource=space)
    assert session.walk_in and not session.violation
    assert Event.objects.filter(name="sharing.occupancy_changed", payload__code="A2", payload__status="occupied").exists()
    response = signed_post(client, reading(alley, "A2", False, start + timedelta(minutes=90), seq=2),
                           alley.secrets["A2"])
    assert response.status_code == 202
    session.refresh_from_db()
    assert session.ended_at == start + timedelta(minutes=90) and session.fee_amount == 1800


def test_duplicates_and_out_of_order_readings_are_never_applied(alley):
    client = Client()
    start = past_day_at(10)
    signed_post(client, reading(alley, "A2", True, start, seq=5), alley.secrets["A2"])
    again = signed_post(client, reading(alley, "A2", True, start, seq=5), alley.secrets["A2"])
    assert again.status_code == 200 and again.json()["result"] == "duplicate"
    older = signed_post(client, reading(alley, "A2", False, start - timedelta(minutes=1), seq=4), alley.secrets["A2"])
    assert older.json()["result"] == "stale"
    assert Resource.objects.get(pk=alley.spaces[1].pk).occupancy == "occupied"
    assert list(Reading.objects.order_by("pk").values_list("fcnt", "applied")) == [(5, True), (4, False)]


@pytest.mark.parametrize(("mutate", "status", "reason"), [
    (lambda body, secret: (json.dumps(body).encode(), "sha256=" + "0" * 64), 401, "bad_signature"),
    (lambda body, secret: (json.dumps(body).encode(), ""), 401, "bad_signature"),  # no signature at all
    (lambda body, secret: (json.dumps({**body, "device": "nobody"}).encode(), "x"), 404, "unknown_device"),
    (lambda body, secret: (b"{not json", "x"), 422, "malformed"),
    (lambda body, secret: (json.dumps({k: v for k, v in body.items() if k != "occupied"}).encode(), None), 422,
     "malformed"),
    (lambda body, secret: (json.dumps({**body, "measured_at": "yesterday"}).encode(), None), 422, "malformed"),
    (lambda body, secret: (json.dumps({**body, "battery": 180}).encode(), None), 422, "malformed"),
])
def test_bad_sensor_traffic_is_refused_logged_and_nothing_applied(alley, mutate, status, reason):
    secret = alley.secrets["A2"]
    raw, signature = mutate(reading(alley, "A2", True, past_day_at(10)), secret)
    response = Client().post("/api/v1/sharing/readings", raw, content_type="application/json",
                             HTTP_X_PUMASI_SIGNATURE=services.sign(secret, raw) if signature is None else signature)
    assert response.status_code == status
    body = response.json()
    assert body["code"] == reason and body["title"]
    assert response["Content-Type"] == "application/problem+json"
    assert IngestRejection.objects.filter(reason=reason).count() == 1
    assert not Reading.objects.exists()
    assert Resource.objects.get(pk=alley.spaces[1].pk).occupancy == "unknown"


def test_future_readings_are_refused(alley):
    future = timezone.now() + timedelta(hours=1)
    response = signed_post(Client(), reading(alley, "A2", True, future), alley.secrets["A2"])
    assert response.status_code == 422 and not Reading.objects.exists()


def tts_uplink(device_id: str, at, occupied: bool, f_cnt: int | None, battery: int):
    uplink = {
        "session_key_id": "AXA50...",
        "f_port": 2,
        "frm_payload": "AQ==",
        "decoded_payload": {"occupied": occupied, "battery": battery},
        "rx_metadata": [{"gateway_ids": {"gateway_id": "doksan-gw-1", "eui": "B827EBFFFE000001"},
                         "time": at.isoformat(), "rssi": -97, "channel_rssi": -97, "snr": 7.5,
                         "uplink_token": "ChQKE...", "received_at": at.isoformat()}],
        "settings": {"data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 7, "coding_rate": "4/5"}},
                     "frequency": "922100000", "timestamp": 1234567},
        "received_at": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.123456789Z"),
        "consumed_airtime": "0.046336s",
        "network_ids": {"net_id": "000013", "tenant_id": "ttn", "cluster_id": "eu1"},
    }
    if f_cnt is not None:
        uplink["f_cnt"] = f_cnt
    return {
        "end_device_ids": {"device_id": device_id, "application_ids": {"application_id": "doksan-parking"},
                           "dev_eui": "70B3D57ED0000001", "dev_addr": "260B1234"},
        "correlation_ids": ["as:up:01H..."],
        "received_at": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.987654321Z"),
        "uplink_message": uplink,
    }


def test_the_things_stack_uplink_webhook(alley):
    client = Client()
    at = past_day_at(11)
    url = f"/api/v1/sharing/ingest/tts/{alley.zone.slug}"
    first = client.post(url, tts_uplink("alley-a3", at, True, None, 77), content_type="application/json",
                        HTTP_AUTHORIZATION=f"Bearer {alley.zone.ingest_secret}")
    assert first.status_code == 202, first.content
    stored = Reading.objects.get()
    assert stored.fcnt == 0 and stored.via == "tts" and stored.battery == 77  # f_cnt omitted means 0
    assert Resource.objects.get(pk=alley.spaces[2].pk).occupancy == "occupied"
    second = client.post(url, tts_uplink("alley-a3", at + timedelta(minutes=5), False, 1, 77),
                         content_type="application/json", HTTP_X_PUMASI_SECRET=alley.zone.ingest_secret)
    assert second.status_code == 202
    wrong = client.post(url, tts_uplink("alley-a3", at + timedelta(minutes=6), True, 2, 77),
                        content_type="application/json", HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 401 and IngestRejection.objects.filter(via="tts", reason="bad_secret").exists()
    no_decoder = tts_uplink("alley-a3", at + timedelta(minutes=7), True, 3, 77)
    del no_decoder["uplink_message"]["decoded_payload"]
    refused = client.post(url, no_decoder, content_type="application/json",
                          HTTP_AUTHORIZATION=f"Bearer {alley.zone.ingest_secret}")
    assert refused.status_code == 422 and "payload formatter" in refused.json()["title"]
    assert Reading.objects.count() == 2


def test_chirpstack_v4_http_integration(alley):
    services.register_device(actor=alley.chief, zone=alley.zone, external_id="0101010101010101",
                             resource=services.add_resource(actor=alley.chief, zone=alley.zone, code="A4"))
    at = past_day_at(12)
    body = {
        "deduplicationId": "3a1b6c6f-6a5c-4a5e-8e53-5a0b2f0e7d11",
        "time": at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "deviceInfo": {"tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242", "tenantName": "Doksan",
                       "applicationId": "17c82e96-be03-4f38-aef3-f83d48582d97", "applicationName": "parking",
                       "deviceProfileId": "14855bf7-d10d-4aee-b618-ebfcb64dc7ad", "deviceProfileName": "PS-1",
                       "deviceName": "space-a4", "devEui": "0101010101010101", "deviceClassEnabled": "CLASS_A",
                       "tags": {}},
        "devAddr": "00189440", "adr": True, "dr": 5, "fCnt": 17, "fPort": 1, "confirmed": False,
        "data": "AQ==", "object": {"occupancy": 1, "batteryLevel": 64},
        "rxInfo": [{"gatewayId": "0016c001f153a14c", "uplinkId": 4217106255, "rssi": -36, "snr": 10.5,
                    "context": "E3OWOQ==", "metadata": {}}],
        "txInfo": {"frequency": 922100000, "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 7,
                                                                   "codeRate": "CR_4_5"}}},
    }
    url = f"/api/v1/sharing/ingest/chirpstack/{alley.zone.slug}"
    response = Client().post(f"{url}?event=up", body, content_type="application/json",
                             HTTP_AUTHORIZATION=f"Bearer {alley.zone.ingest_secret}")
    assert response.status_code == 202, response.content
    stored = Reading.objects.get()
    assert (stored.fcnt, stored.battery, stored.via, stored.occupied) == (17, 64, "chirpstack", True)
    status = Client().post(f"{url}?event=status", {"deviceInfo": body["deviceInfo"], "batteryLevel": 64},
                           content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {alley.zone.ingest_secret}")
    assert status.status_code == 200 and status.json()["result"] == "ignored"
    other_zone = Client().post(f"{url}?event=up", {**body, "fCnt": 18, "deviceInfo": {**body["deviceInfo"],
                               "devEui": "alley-a1"}}, content_type="application/json",
                               HTTP_AUTHORIZATION=f"Bearer {alley.zone.ingest_secret}")
    assert other_zone.status_code == 202  # alley-a1 is in this zone: accepted
    assert Reading.objects.count() == 2


def test_a_night_walk_in_is_a_violation_until_a_holder_claims_it(alley):
    night = past_day_at(22, weekday_ok=lambda d: True)
    services.ingest(via="http", reading=services.IncomingReading("alley-a2", True, night, fcnt=1))
    session = Session.objects.get()
    assert session.violation
    assert Event.objects.filter(name="sharing.violation", recipient=alley.chief).count() == 1
    assert Event.objects.filter(name="sharing.violation", recipient__isnull=True).count() == 1
    assert selectors.board(alley.zone)["violations"] == 1
    with pytest.raises(services.PermissionDenied):
        services.claim_session(actor=alley.member, session=session)
    services.claim_session(actor=alley.holder, session=session)
    session.refresh_from_db()
    assert not session.violation and session.claimed_by == alley.holder
    assert selectors.board(alley.zone)["violations"] == 0


def test_a_booked_car_checks_in_and_out_by_sensor(alley):
    start = timezone.now().astimezone(SEOUL) - timedelta(minutes=30)
    booking = Booking.objects.create(resource=alley.spaces[1], user=alley.member, starts_at=start,
                                     ends_at=start + timedelta(hours=2), reference="r" * 20, fee_amount=2400)
    services.ingest(via="http", reading=services.IncomingReading("alley-a2", True, start + timedelta(minutes=2), fcnt=1))
    booking.refresh_from_db()
    assert booking.status == "checked_in" and booking.checked_in_at == start + timedelta(minutes=2)
    services.ingest(via="http", reading=services.IncomingReading("alley-a2", False, start + timedelta(minutes=20),
                                                                 fcnt=2))
    booking.refresh_from_db()
    assert booking.status == "completed" and booking.fee_amount == 2400


def test_silent_sensor_turns_unknown_and_low_battery_alerts_once(alley):
    at = past_day_at(10)
    now = at + timedelta(minutes=1)
    services.ingest(via="http", reading=services.IncomingReading("alley-a2", False, at, battery=15, fcnt=1), now=now)
    services.ingest(via="http", reading=services.IncomingReading("alley-a2", False, at + timedelta(seconds=30),
                                                                 battery=14, fcnt=2), now=now)
    assert Event.objects.filter(name="sharing.low_battery", recipient__isnull=True).count() == 1
    assert Resource.objects.get(pk=alley.spaces[1].pk).occupancy == "free"
    assert services.sweep(now=now + timedelta(minutes=10))["silent"] == 0
    assert services.sweep(now=now + timedelta(minutes=16))["silent"] == 1
    assert Resource.objects.get(pk=alley.spaces[1].pk).occupancy == "unknown"
    assert Event.objects.filter(name="sharing.sensor_silent", recipient=alley.chief).count() == 1
    assert services.sweep(now=now + timedelta(minutes=20))["silent"] == 0


def test_board_counts_and_full(alley):
    at = past_day_at(10)
    for index, code in enumerate(["A1", "A2", "A3"]):
        services.ingest(via="http", reading=services.IncomingReading(f"alley-{code.lower()}", True, at, fcnt=index))
    board = selectors.board(alley.zone)
    assert (board["free"], board["occupied"], board["full"]) == (0, 3, True)
    services.set_sharing(actor=alley.holder, resource=alley.spaces[0], shares=False)
    services.ingest(via="http", reading=services.IncomingReading("alley-a3", False, at + timedelta(minutes=1), fcnt=9))
    board = selectors.board(alley.zone)
    assert (board["total"], board["free"], board["full"]) == (2, 1, False)


def test_a_batch_of_many_spaces_prices_walk_ins_flags_violations_and_posts_fees_together(alley):
    """What a sensor batch does to several spaces at once is what the readings would do one by one:
    a day walk-in is priced and its fee posted to the ledger with the zone's split, a night walk-in
    is a violation (audited, the committee alerted), and each change is one event."""
    from pumasi.ledger.models import Transaction
    from pumasi.platform.models import AuditEntry

    day = past_day_at(10)
    night = day - timedelta(hours=12)  # 22:00 the evening before
    assert services.ingest_many(via="mqtt", readings=[
        services.IncomingReading("alley-a3", True, night, fcnt=1),
        services.IncomingReading("alley-a2", True, day, fcnt=1),
    ]) == ["applied", "applied"]
    assert services.ingest_many(via="mqtt", readings=[
        services.IncomingReading("alley-a2", False, day + timedelta(minutes=90), fcnt=2),
        services.IncomingReading("alley-a3", False, day + timedelta(minutes=30), fcnt=2),
    ]) == ["applied", "applied"]
    walk_in = Session.objects.get(resource=alley.spaces[1])
    night_one = Session.objects.get(resource=alley.spaces[2])
    assert (walk_in.violation, walk_in.fee_amount, walk_in.fee_posted) == (False, 1800, True)
    assert night_one.violation and night_one.fee_amount == 0 and not night_one.fee_posted
    assert night_one.ended_at == day + timedelta(minutes=30)
    fee = Transaction.objects.get(idempotency_key=f"sharing:walk_in:{walk_in.pk}")
    amounts = sorted(fee.postings.values_list("amount", flat=True))
    assert sum(amounts) == 0 and max(amounts) == 1800 and len(amounts) >= 3  # payer, fund, community, holder
    assert AuditEntry.objects.filter(action="sharing.violation", object_id=str(night_one.pk)).count() == 1
    assert Event.objects.filter(name="sharing.violation", recipient=alley.chief).count() == 1
    assert Event.objects.filter(name="sharing.fee_charged", payload__id=walk_in.pk, payload__posted=True).count() == 1
    assert Event.objects.filter(name="sharing.occupancy_changed", payload__zone="alley").count() == 4
    assert selectors.board(alley.zone)["violations"] == 0  # it ended
