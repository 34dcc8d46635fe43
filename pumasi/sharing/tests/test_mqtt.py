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
