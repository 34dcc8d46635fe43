"""MQTT ingestion against the real Mosquitto on this machine (PUMASI_MQTT_URL, default
mqtt://127.0.0.1:1883), with a topic prefix of its own per test."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from pumasi.sharing import mqtt
from pumasi.sharing.models import IngestRejection, Reading, Resource
from pumasi.sharing.tests.conftest import Alley

BROKER = os.environ.get("PUMASI_MQTT_URL") or "mqtt://127.0.0.1:1883"


def wait_for(check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.django_db(transaction=True)
def test_readings_over_mqtt_are_applied_and_bad_ones_refused(community, member_of):
    alley = Alley(community, member_of, slug="mqtt-alley")
    prefix = f"pumasi-test/{uuid.uuid4().hex}"
    stop, ready = threading.Event(), threading.Event()
    totals = {}

    def subscriber():
        totals.update(mqtt.run(BROKER, prefix=prefix, stop=stop, ready=ready))

    thread = threading.Thread(target=subscriber, daemon=True)
    thread.start()
    try:
        assert ready.wait(10), "the subscriber did not subscribe"
        client = mqtt.connect(BROKER)
        client.loop_start()
        at = timezone.now() - timedelta(minutes=5)
        device = alley.devices["A2"].external_id
        for seq, occupied in enumerate([True, True, False], start=1):
            mqtt.publish_reading(client, prefix=prefix, device=device, secret=alley.secrets["A2"], occupied=occupied,
                                 measured_at=at + timedelta(seconds=seq), seq=seq, battery=80).wait_for_publish(5)
        # the same frame again (a QoS 1 redelivery), a forged one, and one that is not JSON
        mqtt.publish_reading(client, prefix=prefix, device=device, secret=alley.secrets["A2"], occupied=False,
                             measured_at=at + timedelta(seconds=3), seq=3).wait_for_publish(5)
        mqtt.publish_reading(client, prefix=prefix, device=device, secret="forged", occupied=True,
                             measured_at=at + timedelta(seconds=9), seq=9).wait_for_publish(5)
        client.publish(f"{prefix}/{device}/up", b"\x00garbage", qos=1).wait_for_publish(5)
        body = json.dumps({"device": device, "occupied": True, "measured_at": at.isoformat(), "seq": 10})
        client.publish(f"{prefix}/someone-else/up", mqtt.envelope(json.loads(body), alley.secrets["A2"]),
                       qos=1).wait_for_publish(5)
        client.loop_stop()
        client.disconnect()
        assert wait_for(lambda: IngestRejection.objects.filter(via="mqtt").count() >= 3)
        assert wait_for(lambda: Reading.objects.filter(via="mqtt").count() == 3)
    finally:
        stop.set()
        thread.join(10)
    assert sorted(Reading.objects.values_list("fcnt", flat=True)) == [1, 2, 3]
    assert Resource.objects.get(pk=alley.spaces[1].pk).occupancy == "free"
    reasons = sorted(IngestRejection.objects.filter(via="mqtt").values_list("reason", flat=True))
    assert reasons == ["bad_signature", "malformed", "malformed"]
    assert totals == {"applied": 3, "duplicate": 1, "stale": 0, "rejected": 3}


def test_a_batch_answers_as_one_by_one_and_moves_each_space_to_its_newest_reading(alley):
    from pumasi.sharing import services
    from pumasi.sharing.models import Device

    at = timezone.now() - timedelta(minutes=30)
    a2, a3 = alley.devices["A2"].external_id, alley.devices["A3"].external_id
    batch = [
        services.IncomingReading(a2, True, at, fcnt=1, battery=50),
        services.IncomingReading(a3, True, at, fcnt=1),
        services.IncomingReading(a2, False, at + timedelta(seconds=5), fcnt=3, battery=10),
        services.IncomingReading(a2, True, at + timedelta(seconds=2), fcnt=2),  # arrived late: kept, not applied
        services.IncomingReading(a2, False, at + timedelta(seconds=5), fcnt=3),  # the same frame again
    ]
    assert services.ingest_many(via="mqtt", readings=batch) == ["applied", "applied", "applied", "stale", "duplicate"]
    assert Resource.objects.get(pk=alley.spaces[1].pk).occupancy == "free"
    assert Resource.objects.get(pk=alley.spaces[2].pk).occupancy == "occupied"
    device = Device.objects.get(external_id=a2)
    assert (device.last_fcnt, device.battery, device.low_battery) == (3, 10, True)
    assert device.last_measured_at == at + timedelta(seconds=5)
    assert list(Reading.objects.filter(device=device).order_by("fcnt").values_list("fcnt", "applied")) == [
        (1, True), (2, False), (3, True)]
    # A batch with an unknown device is refused whole, and nothing of it is written.
    before = Reading.objects.count()
    with pytest.raises(services.IngestError):
        services.ingest_many(via="mqtt", readings=[services.IncomingReading(a3, False, at + timedelta(seconds=9),
                                                                            fcnt=2),
                                                   services.IncomingReading("ghost", True, at, fcnt=1)])
    assert Reading.objects.count() == before


def test_parsing_a_batch_gives_each_message_its_own_answer(alley):
    at = timezone.now() - timedelta(minutes=5)
    a2 = alley.devices["A2"].external_id
    good = mqtt.envelope({"device": a2, "occupied": True, "measured_at": at.isoformat(), "seq": 1},
                         alley.secrets["A2"])
    forged = mqtt.envelope({"device": a2, "occupied": True, "measured_at": at.isoformat(), "seq": 2}, "forged")
    elsewhere = mqtt.envelope({"device": a2, "occupied": True, "measured_at": at.isoformat(), "seq": 3},
                              alley.secrets["A2"])
    answers = mqtt.ingest.parse_mqtt_many([(f"p/{a2}/up", good), (f"p/{a2}/up", forged), (f"p/{a2}/up", b"[1]"),
                                           ("p/alley-a3/up", elsewhere), ("p/ghost/up", elsewhere)])
    assert answers[0].fcnt == 1 and answers[0].occupied is True
    assert [getattr(a, "reason", None) for a in answers[1:]] == ["bad_signature", "malformed", "malformed",
                                                                 "malformed"]
