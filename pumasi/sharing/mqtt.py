"""The MQTT side of sensor ingestion: `pumasi mqtt` subscribes to `<prefix>/+/up` on the broker
at PUMASI_MQTT_URL and applies readings in small batches (one transaction per batch, which is
what makes thousands of readings a second possible); `publish_reading` is what a sensor (or
the simulator) sends."""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from datetime import datetime
from urllib.parse import urlparse

import paho.mqtt.client as paho
from django.db import IntegrityError, close_old_connections

from pumasi.sharing import ingest, services

logger = logging.getLogger("pumasi.sharing.mqtt")
DEFAULT_PREFIX = "pumasi/sensors"


def connect(url: str, client_id: str | None = None, max_inflight: int = 1000) -> paho.Client:
    """A client for the broker at `url`. paho allows 20 unacknowledged QoS 1 messages by default,
    which caps a publisher at 20 round trips' worth; a sensor gateway or the simulator needs more."""
    parsed = urlparse(url)
    if parsed.scheme not in ("mqtt", "mqtts"):
        raise ValueError(f"PUMASI_MQTT_URL must be mqtt:// or mqtts://, not {url!r}")
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id or f"pumasi-{uuid.uuid4().hex[:8]}")
    if parsed.username:
        client.username_pw_set(parsed.username, parsed.password)
    if parsed.scheme == "mqtts":
        client.tls_set()
    client.max_inflight_messages_set(max_inflight)
    client.max_queued_messages_set(0)
    client.connect(parsed.hostname or "127.0.0.1", parsed.port or (8883 if parsed.scheme == "mqtts" else 1883), 30)
    return client


def envelope(body: dict, secret: str) -> bytes:
    text = json.dumps(body, separators=(",", ":"))
    return json.dumps({"body": text, "signature": services.sign(secret, text.encode())}).encode()


def publish_reading(client: paho.Client, *, prefix: str, device: str, secret: str, occupied: bool,
                    measured_at: datetime, seq: int | None = None, battery: int | None = None, qos: int = 1):
    body = {"device": device, "occupied": occupied, "measured_at": measured_at.isoformat()}
    if seq is not None:
        body["seq"] = seq
    if battery is not None:
        body["battery"] = battery
    return client.publish(f"{prefix}/{device}/up", envelope(body, secret), qos=qos)


def apply_batch(messages: list[tuple[str, bytes]]) -> dict[str, int]:
    """Parse and authenticate each message (refusals logged one by one), then apply the good
    ones in one transaction; if the batch as a whole is refused, fall back to one at a time."""
    counts = {"applied": 0, "duplicate": 0, "stale": 0, "rejected": 0}
    good = []
    for (topic, _payload), parsed in zip(messages, ingest.parse_mqtt_many(messages), strict=True):
        if isinstance(parsed, services.IngestError):
            services.log_rejection(via="mqtt", error=parsed, device_ref=topic.split("/")[-2] if "/" in topic else "")
            counts["rejected"] += 1
            continue
        good.append(parsed)
    if not good:
        return counts
    try:
        results = services.ingest_many(via="mqtt", readings=good)
    except (services.IngestError, IntegrityError):  # one bad reading (or a race) must not sink the rest
        results = []
        for reading in good:
            try:
                results.append(services.ingest(via="mqtt", reading=reading))
            except services.IngestError as error:
                services.log_rejection(via="mqtt", error=error, device_ref=reading.external_id)
                counts["rejected"] += 1
    for result in results:
        counts[result] += 1
    return counts


def run(url: str, *, prefix: str = DEFAULT_PREFIX, stop: threading.Event | None = None,
        ready: threading.Event | None = None, batch_size: int = 1000, batch_wait: float = 0.02,
        qos: int = 0) -> dict[str, int]:
    """Subscribe and apply until `stop` is set. Returns the totals."""
    stop = stop or threading.Event()
    inbox: queue.Queue = queue.Queue()
    totals = {"applied": 0, "duplicate": 0, "stale": 0, "rejected": 0}

    def on_connect(client, userdata, flags, reason_code, properties):
        # QoS 0 from the broker to us: with a clean session nothing would be redelivered after a
        # reconnect anyway, and QoS 1 would cap delivery at the broker's 20 in flight and drop
        # whatever overflows its 1,000-message queue in a burst. Sensors still publish at QoS 1 to
        # the broker, and they repeat their state every interval, which heals a lost reading.
        client.subscribe(f"{prefix}/+/up", qos=qos)

    def on_subscribe(client, userdata, mid, reason_codes, properties):
        if ready is not None:
            ready.set()

    def on_message(client, userdata, message):
        inbox.put((message.topic, message.payload))

    client = connect(url)
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.loop_start()
    try:
        while not stop.is_set():
            try:
                first = inbox.get(timeout=0.2)
            except queue.Empty:
                continue
            batch = [first]
            deadline = time.monotonic() + batch_wait
            while len(batch) < batch_size:
                try:
                    batch.append(inbox.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            try:
                counts = apply_batch(batch)
            except Exception:  # a database hiccup must not end the subscriber; the broker keeps the rest
                logger.exception("could not apply a batch of %d readings", len(batch))
                close_old_connections()
                continue
            for key, value in counts.items():
                totals[key] += value
    finally:
        client.loop_stop()
        client.disconnect()
        close_old_connections()
    return totals
