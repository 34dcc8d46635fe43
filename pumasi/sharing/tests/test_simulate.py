"""The parking simulator: its plan of the day (residents out in the morning, back in the evening,
visitors by day), and end to end through the real HTTP endpoint of a `pumasi run` and through the
real Mosquitto broker, with every reading it sent stored and the spaces left as it says."""

from __future__ import annotations

import io
import os
import threading
import time
import uuid
from datetime import datetime, timedelta

import pytest
from django.core.management import CommandError, call_command

from pumasi.sharing import mqtt, services
from pumasi.sharing.models import Reading, Resource
from pumasi.sharing.simulate import HttpTransport, MqttTransport, ParkingSimulation
from pumasi.sharing.tests.conftest import SEOUL, Alley

BROKER = os.environ.get("PUMASI_MQTT_URL") or "mqtt://127.0.0.1:1883"


def test_residents_leave_in_the_morning_and_return_in_the_evening_and_visitors_come_by_day(community, member_of):
    alley = Alley(community, member_of, slug="sim-alley")
    for space in alley.spaces[1:]:
        services.assign_holder(actor=alley.chief, resource=space, holder=member_of(community))
    monday = datetime(2026, 5, 11, tzinfo=SEOUL)
    sim = ParkingSimulation(alley.zone, speed=60, transport=HttpTransport("http://127.0.0.1:9"), seed=4,
                            start=monday)
    sim.queue.clear()
    sim.away.clear()  # everyone at home: plan the days as they come
    for offset in range(28):
        sim._plan_day((monday + timedelta(days=offset)).date())
    hours: dict[str, list[float]] = {}
    for item in sim.queue:
        local = item.at.astimezone(SEOUL)
        hours.setdefault(item.what, []).append(local.hour + local.minute / 60)
        if item.what == "visitor":
            assert local.weekday() < 6 and 9 <= local.hour < 18
    weekday_leaves = [item.at.astimezone(SEOUL) for item in sim.queue if item.what == "leave_home"
                      and item.at.astimezone(SEOUL).weekday() < 5]
    assert len(weekday_leaves) > 20
    assert sum(5 <= t.hour < 11 for t in weekday_leaves) / len(weekday_leaves) > 0.9
    returns = hours["return"]
    assert sum(h >= 15 for h in returns) / len(returns) > 0.8
    assert len(hours["visitor"]) > 28 * 6 / 7 * 9 * 0.75 * 0.5  # ~0.75 an hour for 3 spaces, by day


@pytest.mark.django_db(transaction=True)
def test_simulation_sends_real_signed_readings_over_http(pumasi_server, community, member_of):
    alley = Alley(community, member_of, slug="sim-http")
    server = pumasi_server({"PUMASI_REDIS_URL": ""})
    out = io.StringIO()
    call_command("simulate", "parking", zone="sim-http", days=2, speed=86400 * 8, via="http", url=server.url,
                 seed=7, stdout=out)
    assert "done:" in out.getvalue()
    sent = int(out.getvalue().split("'readings': ")[1].split(",")[0])
    assert sent >= 3
    assert Reading.objects.filter(device__zone=alley.zone, via="http").count() == sent
    assert not Reading.objects.filter(device__zone=alley.zone, applied=False).exists()
    for space in Resource.objects.filter(zone=alley.zone):
        latest = Reading.objects.filter(resource=space).order_by("-measured_at").first()
        assert space.occupancy == ("occupied" if latest.occupied else "free")


@pytest.mark.django_db(transaction=True)
def test_simulation_over_mqtt_reaches_the_database(community, member_of):
    alley = Alley(community, member_of, slug="sim-mqtt")
    prefix = f"pumasi-test/{uuid.uuid4().hex}"
    stop, ready = threading.Event(), threading.Event()
    thread = threading.Thread(target=mqtt.run, args=(BROKER,), kwargs={"prefix": prefix, "stop": stop,
                                                                        "ready": ready}, daemon=True)
    thread.start()
    try:
        assert ready.wait(10)
        transport = MqttTransport(BROKER, prefix)
        sim = ParkingSimulation(alley.zone, speed=86400 * 8, transport=transport, seed=3)
        counts = sim.run(days=2)
        transport.close()
        deadline = time.monotonic() + 20
        while Reading.objects.filter(device__zone=alley.zone).count() < counts["readings"]:
            assert time.monotonic() < deadline, "the readings did not all arrive"
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(10)
    assert Reading.objects.filter(device__zone=alley.zone, via="mqtt").count() == counts["readings"]
    for code, space in sim.spaces.items():
        assert Resource.objects.get(zone=alley.zone, code=code).occupancy == ("occupied" if space.occupied else "free")


def test_unknown_zone_is_a_clear_error(db):
    with pytest.raises(CommandError, match="No zone"):
        call_command("simulate", "parking", zone="nowhere", days=1)
