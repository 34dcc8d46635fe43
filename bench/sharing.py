"""Sharing benchmark, in one run: policy-engine decisions/s; sensor readings/s through the signed
HTTP path; readings/s over MQTT end to end into the database (the real `pumasi mqtt` subscriber
process) beside Mosquitto's raw rate with the same QoS 0 publisher and payloads (target >= 5,000/s),
and the rate with their consequences (a `pumasi worker` notifying the committee of violations);
sensor -> board latency p50/p99 from publishing a reading on MQTT to receiving the board event
on a signed-out `/z/<slug>/board/stream` of a real `pumasi run` (target p99 <= 300 ms); and 10,000
contended booking attempts from several processes: bookings/s and double bookings (must be 0).

`python -m bench.sharing` runs it alone. Measuring happens in a child process with its own
throwaway SQLite database under var/bench/ (never the demo database). MQTT uses
PUMASI_MQTT_URL or mqtt://127.0.0.1:1883; the server and the subscriber announce events through
Redis (PUMASI_BENCH_REDIS_URL, default redis://127.0.0.1:6379/14) when it answers, as a
multi-process deployment does, else they poll the database (then latency is poll-bound).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKDIR = ROOT / "var" / "bench"
BROKER = os.environ.get("PUMASI_MQTT_URL") or "mqtt://127.0.0.1:1883"
REDIS = os.environ.get("PUMASI_BENCH_REDIS_URL") or "redis://127.0.0.1:6379/14"
N_MQTT = 20_000
MQTT_DEVICES = 500
LATENCY_SAMPLES = 300
BOOKING_ATTEMPTS = 10_000
BOOKING_PROCESSES = 4


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
         "note": f"published QoS 0, subscribed QoS 0; {f['mqtt_raw_received']:,} of {N_MQTT:,} received"},
        {"name": "readings via MQTT into the database", "value": f["mqtt_db_per_s"], "unit": "readings/s",
         "ratio": f["mqtt_db_per_s"] / f["mqtt_raw_per_s"], "of": "Mosquitto raw",
         "note": f"target >= 5,000/s; {N_MQTT:,} readings of {MQTT_DEVICES} sensors, 1 in 10 a change, across 09:00; "
                 f"`pumasi mqtt` process; {f['stored']:,} of {N_MQTT:,} stored"},
        {"name": "readings with their consequences", "value": f["consequences_per_s"], "unit": "readings/s",
         "note": f"until the `pumasi worker` has notified the committee of every violation: {f['sessions']:,} walk-ins, "
                 f"{f['violations']:,} violations, {f['fees_posted']:,} fees posted, {f['notifications']:,} notifications"},
        {"name": "sensor -> board latency p50", "value": f["latency_p50_ms"], "unit": "ms",
         "note": f"MQTT publish -> board stream event, {f['latency_n']} readings; {f['announce']}"},
        {"name": "sensor -> board latency p99", "value": f["latency_p99_ms"], "unit": "ms",
         "note": "target <= 300 ms"},
        {"name": "sensor -> board latency p99 via HTTP", "value": f["latency_http_p99_ms"], "unit": "ms",
         "note": f"signed POST to the same server; p50 {f['latency_http_p50_ms']:.1f} ms"},
        {"name": "contended booking attempts", "value": f["booking_attempts_per_s"], "unit": "attempts/s",
         "note": f"{f['booking_attempts']:,} attempts, {BOOKING_PROCESSES} processes, 6 spaces, 1-3 h in 2 days"},
        {"name": "bookings made", "value": f["bookings_per_s"], "unit": "bookings/s",
         "note": f"{f['bookings_made']:,} made, {f['booking_conflicts']:,} refused as overlapping"},
        {"name": "double bookings", "value": f["double_bookings"], "unit": "pairs", "note": "must be 0"},
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
    from pumasi.sharing import policy, selectors, services

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

    figures = {"decisions_per_s": decisions, "http_per_s": http_rate}
    figures.update(_mqtt_and_latency(chief, community, zone))
    figures.update(_bookings(chief, community))
    return figures


def _redis_url() -> str:
    try:
        import redis

        redis.Redis.from_url(REDIS, socket_connect_timeout=1).ping()
        return REDIS
    except Exception:
        return ""


def _child_env(redis_url: str) -> dict[str, str]:
    env = dict(os.environ)
    # As deployed: the subscriber and the server queue job-side work (notifications, webhooks) for
    # a `pumasi worker`, which the benchmark runs beside them and waits for (the "consequences" row).
    env.update(PUMASI_REDIS_URL=redis_url, PUMASI_DEBUG="0", PUMASI_API_RATE_LIMIT=str(10**9),
               PUMASI_JOBS_IMMEDIATE="0")
    return env


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _mqtt_and_latency(chief, community, zone) -> dict:
    import random
    import socket
    from datetime import UTC, datetime, timedelta
    from datetime import time as dtime
    from zoneinfo import ZoneInfo

    import httpx

    from pumasi.platform.models import Event, Notification
    from pumasi.sharing import mqtt, services
    from pumasi.sharing.models import Reading, Session

    redis_url = _redis_url()
    devices = []
    mq_zone = services.create_zone(actor=chief, community=community, name="Bench MQTT", slug="bench-mqtt")
    # The Doksan rules: anyone by day (a fee), permit holders only by night (a walk-in is a violation).
    services.add_window(actor=chief, zone=mq_zone, name="Day", days=255, start_time=dtime(9), end_time=dtime(18),
                        audience="anyone", fee_per_hour=1000, max_stay_minutes=600)
    services.add_window(actor=chief, zone=mq_zone, name="Night", days=255, start_time=dtime(18), end_time=dtime(9),
                        audience="holders")
    for index in range(MQTT_DEVICES):
        space = services.add_resource(actor=chief, zone=mq_zone, code=f"M{index:03d}")
        device, secret = services.register_device(actor=chief, zone=mq_zone, external_id=f"mq-{index:03d}",
                                                  resource=space)
        devices.append((device.external_id, secret))

    # 1 reading in 10 is a change of state; the rest repeat it, as parked-car sensors do.
    # The readings span 09:00 of yesterday in the zone (20 s, 1 ms apart), so whatever the time of
    # the run, the cars that arrive before 09:00 are night violations (audited, the committee alerted
    # and notified) and those after are day walk-ins (priced, fees posted to the ledger as they leave).
    rng = random.Random(11)
    state = [False] * MQTT_DEVICES
    local = datetime.now(ZoneInfo(mq_zone.time_zone)) - timedelta(days=1)
    start = local.replace(hour=8, minute=59, second=50, microsecond=0).astimezone(UTC)
    payloads = []
    for index in range(N_MQTT):
        device = index % MQTT_DEVICES
        if rng.random() < 0.1:
            state[device] = not state[device]
        external_id, secret = devices[device]
        body = {"device": external_id, "occupied": state[device], "seq": index + 1,
                "measured_at": (start + timedelta(milliseconds=index)).isoformat()}
        payloads.append((external_id, mqtt.envelope(body, secret)))

    def publish_all(prefix: str, client) -> None:
        # QoS 0 and no waiting: a QoS 1 publisher in Python is itself the bottleneck (about 4,000/s
        # on this machine), which would make Mosquitto's "raw" rate the publisher's rate. The same
        # publisher feeds both measurements below, so the two rates compare like with like.
        for external_id, payload in payloads:
            client.publish(f"{prefix}/{external_id}/up", payload, qos=0)

    # Mosquitto alone: a plain subscriber counting the same messages from the same publisher.
    prefix = f"bench/{uuid.uuid4().hex}"
    received = threading.Event()
    count = [0]
    sub = mqtt.connect(BROKER)

    def on_message(client, userdata, message):
        count[0] += 1
        if count[0] == N_MQTT:
            received.set()

    sub.on_message = on_message
    sub.subscribe(f"{prefix}/+/up", qos=0)  # as `pumasi mqtt` subscribes
    sub.loop_start()
    time.sleep(0.5)
    pub = mqtt.connect(BROKER, max_inflight=65535)
    pub.loop_start()
    started = time.perf_counter()
    publish_all(prefix, pub)
    last = (-1, time.perf_counter())
    while not received.wait(0.05):
        if count[0] != last[0]:
            last = (count[0], time.perf_counter())
        elif time.perf_counter() - last[1] > 3:  # nothing more is coming: the broker dropped the rest
            break
    raw_rate = count[0] / ((last[1] if count[0] < N_MQTT else time.perf_counter()) - started)
    raw_count = count[0]
    sub.loop_stop()
    sub.disconnect()

    # The real subscriber, `pumasi mqtt`, in its own process as deployed.
    prefix = f"bench/{uuid.uuid4().hex}"
    env = _child_env(redis_url)
    # Its log goes to a file: a pipe nobody reads would fill up and stop the subscriber.
    log = open(WORKDIR / f"mqtt-{os.getpid()}.log", "wb")  # noqa: SIM115
    subscriber = subprocess.Popen([sys.executable, "-m", "pumasi.cli", "mqtt", "--url", BROKER, "--prefix", prefix],
                                  cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
    worker = subprocess.Popen([sys.executable, "-m", "pumasi.cli", "worker"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    port = _free_port(socket)
    server = subprocess.Popen([sys.executable, "-m", "pumasi.cli", "run", "--port", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        # Ready when a probe reading has gone all the way into the database.
        probe_id, probe_secret = devices[0]
        deadline = time.monotonic() + 60
        seq = 10**9
        while not Reading.objects.filter(device__external_id=probe_id, fcnt__gte=10**9).exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"pumasi mqtt did not start; see {log.name}")
            seq += 1
            mqtt.publish_reading(pub, prefix=prefix, device=probe_id, secret=probe_secret, occupied=False,
                                 measured_at=start - timedelta(minutes=1), seq=seq)
            time.sleep(0.3)
        # Counted by id above the last one before (an index range, not a scan of the table),
        # every 50 ms: the counting must not take the subscriber's CPU or its database.
        floor = Reading.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        event_floor = Event.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        session_floor = Session.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        started = time.perf_counter()
        publish_all(prefix, pub)
        last = (-1, time.perf_counter())
        while True:
            stored = Reading.objects.filter(pk__gt=floor).count()
            if stored >= N_MQTT:
                break
            if stored != last[0]:
                last = (stored, time.perf_counter())
            elif time.perf_counter() - last[1] > 5:  # nothing more is coming: lost on the way
                break
            time.sleep(0.05)
        db_rate = stored / ((last[1] if stored < N_MQTT else time.perf_counter()) - started)
        print(f"mqtt: raw {raw_rate:.0f}/s ({raw_count}), into the database {db_rate:.0f}/s ({stored})", file=sys.stderr)
        # The consequences: every personal event (a violation alert to the committee) has become a
        # notification in the worker.
        expected = (Event.objects.filter(pk__gt=event_floor, recipient__isnull=False)
                    .exclude(name__startswith="notifications.").count())
        last = (-1, time.perf_counter())
        while True:
            notified = Notification.objects.filter(event_id__gt=event_floor).count()
            if notified >= expected:
                break
            if notified != last[0]:
                last = (notified, time.perf_counter())
            elif time.perf_counter() - last[1] > 10:
                raise RuntimeError(f"the worker stopped at {notified} of {expected} notifications; see {log.name}")
            time.sleep(0.1)
        consequences_s = time.perf_counter() - started
        sessions = Session.objects.filter(pk__gt=session_floor)
        mix = {"sessions": sessions.count(), "violations": sessions.filter(violation=True).count(),
               "fees_posted": sessions.filter(fee_posted=True).count(), "notifications": notified}

        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=2)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        board_devices = devices[:20]
        now = datetime.now(UTC)

        def via_mqtt(index, occupied, at):
            external_id, secret = board_devices[index % len(board_devices)]
            mqtt.publish_reading(pub, prefix=prefix, device=external_id, secret=secret, occupied=occupied,
                                 measured_at=at, seq=2 * 10**9 + index)

        def via_http(index, occupied, at):
            external_id, secret = board_devices[index % len(board_devices)]
            raw = json.dumps({"device": external_id, "occupied": occupied, "measured_at": at.isoformat(),
                              "seq": 3 * 10**9 + index}).encode()
            threading.Thread(target=httpx.post, args=(f"{base}/api/v1/sharing/readings",), kwargs={
                "content": raw, "headers": {"Content-Type": "application/json",
                                            "X-Pumasi-Signature": services.sign(secret, raw)}}).start()

        mqtt_latency = _board_latency(base, "bench-mqtt", board_devices, via_mqtt, now, 0)
        http_latency = _board_latency(base, "bench-mqtt", board_devices, via_http, now, LATENCY_SAMPLES)
    finally:
        # The server runs in its own process group so granian's workers end with it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        subscriber.terminate()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGTERM)
        for process in (server, subscriber, worker):
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        pub.loop_stop()
        pub.disconnect()
        log.close()
    return {"mqtt_raw_per_s": raw_rate, "mqtt_raw_received": raw_count, "mqtt_db_per_s": db_rate, "stored": stored,
            "consequences_per_s": stored / consequences_s, **mix,
            "latency_p50_ms": _percentile(mqtt_latency, 0.5), "latency_p99_ms": _percentile(mqtt_latency, 0.99),
            "latency_n": len(mqtt_latency), "latency_http_p50_ms": _percentile(http_latency, 0.5),
            "latency_http_p99_ms": _percentile(http_latency, 0.99),
            "announce": "events announced via Redis" if redis_url else "no Redis: the hub polls every 0.5 s"}


def _free_port(socket) -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _board_latency(base: str, slug: str, board_devices, send, now, offset: int) -> list[float]:
    """Send readings one at a time, each turning one space over, and time each until a board event
    showing it arrives on the public stream."""
    import queue
    from datetime import timedelta

    import httpx

    boards: queue.Queue = queue.Queue()
    stop = threading.Event()

    def listen():
        with httpx.Client(timeout=httpx.Timeout(10.0, read=30.0)) as client, client.stream(
                "GET", f"{base}/z/{slug}/board/stream") as response:
            fields = {}
            for line in response.iter_lines():
                if stop.is_set():
                    return
                if line == "":
                    if fields.get("event") == "board":
                        board = json.loads(fields["data"])["board"]
                        boards.put((time.perf_counter(), {s["code"]: s["status"] for s in board["spaces"]}))
                    fields = {}
                elif not line.startswith(":"):
                    key, _, value = line.partition(":")
                    fields[key] = value.removeprefix(" ")

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    _at, current = boards.get(timeout=30)  # the board as it is when the display connects
    codes = [f"M{int(external_id.split('-')[1]):03d}" for external_id, _s in board_devices]
    current = {code: status == "occupied" for code, status in current.items()}
    latencies = []
    for index in range(LATENCY_SAMPLES):
        code = codes[index % len(codes)]
        occupied = not current.get(code, False)
        current[code] = occupied
        want = "occupied" if occupied else "free"
        sent = time.perf_counter()
        send(offset + index, occupied, now + timedelta(microseconds=offset + index))
        while True:
            at, spaces = boards.get(timeout=10)
            if spaces.get(code) == want:
                latencies.append((at - sent) * 1000)
                break
        time.sleep(0.02)
    stop.set()
    return latencies


def _book_worker(args) -> tuple[int, int, int]:
    """One process's share of the contended attempts: (made, refused as overlapping, other refusals)."""
    import django

    django.setup()
    import random
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from pumasi.core.errors import Conflict, DomainError
    from pumasi.sharing import services
    from pumasi.sharing.models import Resource

    worker, attempts, user_ids, resource_ids = args
    rng = random.Random(worker)
    people = list(get_user_model().objects.filter(pk__in=user_ids))
    spaces = list(Resource.objects.select_related("zone", "zone__community").filter(pk__in=resource_ids))
    base = (timezone.now() + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    made = overlapping = other = 0
    for _ in range(attempts):
        start = base + timedelta(minutes=15 * rng.randrange(0, 4 * 48))
        try:
            services.create_booking(actor=rng.choice(people), resource=rng.choice(spaces), starts_at=start,
                                    ends_at=start + timedelta(minutes=rng.choice([60, 90, 120, 180])))
            made += 1
        except Conflict:
            overlapping += 1
        except DomainError:
            other += 1
    return made, overlapping, other


def _bookings(chief, community) -> dict:
    import multiprocessing
    from datetime import time as dtime

    from django.db import connection, connections

    from pumasi.communities.models import Membership
    from pumasi.sharing import services
    from pumasi.sharing.models import Booking

    zone = services.create_zone(actor=chief, community=community, name="Bench bookings", slug="bench-book")
    services.add_window(actor=chief, zone=zone, name="Always", days=255, start_time=dtime(0), end_time=dtime(0),
                        audience="members")
    spaces = [services.add_resource(actor=chief, zone=zone, code=f"K{index}").pk for index in range(6)]
    people = []
    for index in range(20):
        person = type(chief).objects.create_user(email=f"booker{index}@example.com", password="x" * 20,
                                                 display_name=f"booker {index}")
        Membership.objects.create(community=community, user=person, role="member")
        people.append(person.pk)
    connections.close_all()
    share = BOOKING_ATTEMPTS // BOOKING_PROCESSES
    context = multiprocessing.get_context("spawn")
    started = time.perf_counter()
    with context.Pool(BOOKING_PROCESSES) as pool:
        results = pool.map(_book_worker, [(worker, share, people, spaces) for worker in range(BOOKING_PROCESSES)])
    elapsed = time.perf_counter() - started
    made = sum(r[0] for r in results)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM sharing_booking a JOIN sharing_booking b ON a.resource_id = b.resource_id "
            "AND a.id < b.id AND a.starts_at < b.ends_at AND b.starts_at < a.ends_at "
            "WHERE a.status IN ('held', 'confirmed', 'checked_in', 'overstay') "
            "AND b.status IN ('held', 'confirmed', 'checked_in', 'overstay')")
        double = cursor.fetchone()[0]
    assert made == Booking.objects.filter(resource__zone=zone).count()
    return {"booking_attempts": share * BOOKING_PROCESSES, "booking_attempts_per_s": share * BOOKING_PROCESSES / elapsed,
            "bookings_made": made, "bookings_per_s": made / elapsed, "booking_conflicts": sum(r[1] for r in results),
            "booking_other_refusals": sum(r[2] for r in results), "double_bookings": double}


if __name__ == "__main__":
    if "--measure" in sys.argv:
        print(json.dumps(_measure()))
    else:
        for row in run():
            print(row)
