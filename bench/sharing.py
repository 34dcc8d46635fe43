"""Sharing benchmark: policy-engine decisions/s, sensor readings/s through the signed HTTP path,
and readings/s over MQTT end to end into the database beside Mosquitto's raw rate.

`python -m bench.sharing` runs it alone. Measuring happens in a child process with its own
throwaway SQLite database under var/bench/ (never the demo database). MQTT uses
PUMASI_MQTT_URL or mqtt://127.0.0.1:1883.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKDIR = ROOT / "var" / "bench"
BROKER = os.environ.get("PUMASI_MQTT_URL") or "mqtt://127.0.0.1:1883"


def run() -> list[dict]:
    WORKDIR.mkdir(parents=True, exist_ok=True)
    db = WORKDIR / f"sharing-{os.getpid()}.sqlite3"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUMASI_")}
    env.update(PUMASI_DATABASE_URL=f"sqlite:///{db}", PUMASI_VAR_DIR=str(WORKDIR / "var"), PUMASI_MQTT_URL=BROKER,
               DJANGO_SETTINGS_MODULE="pumasi.settings", PUMASI_JOBS_IMMEDIATE="1", PUMASI_LOG_LEVEL="ERROR")
    try:
        done = subprocess.run([sys.executable, "-m", "bench.sharing", "--measure"], cwd=ROOT, env=env,
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"the sharing benchmark failed:\n{done.stderr[-4000:]}")
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    f = json.loads(done.stdout.strip().splitlines()[-1])
    return [
        {"name": "policy engine decisions", "value": f["decisions_per_s"], "unit": "decisions/s",
         "note": "Doksan rules, random 15 min–10 h stays, Asia/Seoul"},
        {"name": "readings via signed HTTP (in-process)", "value": f["http_per_s"], "unit": "readings/s",
         "note": "full Django stack, HMAC check, one transaction each"},
        {"name": "Mosquitto raw (publish → subscriber)", "value": f["mqtt_raw_per_s"], "unit": "msgs/s",
         "note": "QoS 1, same payloads"},
        {"name": "readings via MQTT into the database", "value": f["mqtt_db_per_s"], "unit": "readings/s",
         "ratio": f["mqtt_db_per_s"] / f["mqtt_raw_per_s"], "of": "Mosquitto raw", "note": "target >= 5,000/s"},
    ]


def _measure() -> dict:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    import random
    from datetime import UTC, datetime, timedelta
    from datetime import time as dtime

    from django.contrib.auth import get_user_model
    from django.test import Client

    from pumasi.communities.models import Community, Membership
    from pumasi.sharing import mqtt, policy, selectors, services
    from pumasi.sharing.models import Reading

    chief = get_user_model().objects.create_user(email="bench@example.com", password="x" * 20, display_name="b")
    community = Community.objects.create(name="Bench", slug="bench", kind="residents")
    Membership.objects.create(community=community, user=chief, role="organiser")
    zone = services.create_zone(actor=chief, community=community, name="Bench alley", slug="bench-alley")
    services.add_window(actor=chief, zone=zone, name="Day", days=63, start_time=dtime(9), end_time=dtime(18),
                        audience="anyone", fee_per_hour=1000, max_stay_minutes=600)
    services.add_window(actor=chief, zone=zone, name="Night", days=255, start_time=dtime(18), end_time=dtime(9),
                        audience="holders")
    devices = []
    for index in range(50):
        space = services.add_resource(actor=chief, zone=zone, code=f"B{index:02d}")
        device, secret = services.register_device(actor=chief, zone=zone, external_id=f"bench-{index:02d}",
                                                  resource=space)
        devices.append((device.external_id, secret))

    rules = selectors.rules_for(zone)
    rng = random.Random(7)
    base = datetime(2026, 5, 11, tzinfo=UTC)
    n = 20000
    started = time.perf_counter()
    for _ in range(n):
        t1 = base + timedelta(minutes=rng.randrange(0, 60 * 24 * 7))
        policy.decide(t1=t1, t2=t1 + timedelta(minutes=rng.randrange(15, 600)), rules=rules, tz_name="Asia/Seoul",
                      holidays=frozenset(), audiences={"anyone", "members"}, check_notice=False)
    decisions = n / (time.perf_counter() - started)

    client = Client()
    now = datetime.now(UTC) - timedelta(hours=2)
    n_http = 2000
    started = time.perf_counter()
    for index in range(n_http):
        external_id, secret = devices[index % len(devices)]
        body = json.dumps({"device": external_id, "occupied": index % 2 == 0, "seq": index,
                           "measured_at": (now + timedelta(milliseconds=index)).isoformat()}).encode()
        response = client.post("/api/v1/sharing/readings", body, content_type="application/json",
                               HTTP_X_PUMASI_SIGNATURE=services.sign(secret, body))
        assert response.status_code == 202, response.content
    http_rate = n_http / (time.perf_counter() - started)

    n_mqtt = 20000
    payloads = []
    later = now + timedelta(minutes=10)
    for index in range(n_mqtt):
        external_id, secret = devices[index % len(devices)]
        body = {"device": external_id, "occupied": index % 3 == 0, "seq": 100000 + index,
                "measured_at": (later + timedelta(milliseconds=index)).isoformat()}
        payloads.append((f"{{prefix}}/{external_id}/up", mqtt.envelope(body, secret)))

    # Mosquitto alone: a plain subscriber counting the same messages.
    prefix = f"bench/{uuid.uuid4().hex}"
    received = threading.Event()
    count = [0]
    sub = mqtt.connect(BROKER)

    def on_message(client, userdata, message):
        count[0] += 1
        if count[0] == n_mqtt:
            received.set()

    sub.on_message = on_message
    sub.subscribe(f"{prefix}/+/up", qos=1)
    sub.loop_start()
    time.sleep(0.5)
    pub = mqtt.connect(BROKER)
    pub.loop_start()
    started = time.perf_counter()
    for topic, payload in payloads:
        pub.publish(topic.replace("{prefix}", prefix), payload, qos=1)
    received.wait(120)
    raw_rate = count[0] / (time.perf_counter() - started)
    sub.loop_stop()
    sub.disconnect()

    prefix = f"bench/{uuid.uuid4().hex}"
    stop, ready = threading.Event(), threading.Event()
    thread = threading.Thread(target=mqtt.run, args=(BROKER,), kwargs={"prefix": prefix, "stop": stop,
                                                                        "ready": ready}, daemon=True)
    thread.start()
    ready.wait(10)
    before = Reading.objects.count()
    started = time.perf_counter()
    for topic, payload in payloads:
        pub.publish(topic.replace("{prefix}", prefix), payload, qos=1)
    deadline = time.monotonic() + 300
    while Reading.objects.count() - before < n_mqtt and time.monotonic() < deadline:
        time.sleep(0.05)
    stored = Reading.objects.count() - before
    db_rate = stored / (time.perf_counter() - started)
    stop.set()
    thread.join(10)
    pub.loop_stop()
    pub.disconnect()
    return {"decisions_per_s": decisions, "http_per_s": http_rate, "mqtt_raw_per_s": raw_rate,
            "mqtt_db_per_s": db_rate, "stored": stored}


if __name__ == "__main__":
    if "--measure" in sys.argv:
        print(json.dumps(_measure()))
    else:
        for row in run():
            print(row)
