"""Sensor traffic in: the four formats a reading may arrive in, each parsed and authenticated
into an `IncomingReading`, or refused with an `IngestError` (logged, nothing applied).

1. HTTP JSON, signed: the body `{"device", "occupied", "measured_at", "battery"?, "seq"?}` with
   `X-Pumasi-Signature: sha256=<HMAC-SHA256 of the raw body with the device's secret>`.
2. MQTT: the same body, carried in an envelope `{"body": "<that JSON as text>", "signature": "sha256=…"}`
   on `<prefix>/<device>/up` (MQTT 3.1.1 has no headers, and signing the exact text avoids
   any canonical-JSON question).
3. The Things Stack v3 uplink webhook (`end_device_ids.device_id`, `uplink_message.decoded_payload`,
   `received_at`; proto3 JSON omits zero values, so a missing `f_cnt` is 0).
4. ChirpStack v4 HTTP integration, `?event=up` (`deviceInfo.devEui`, `object`, `fCnt`, `time`).
The network servers authenticate with the zone's ingest secret (a header they let one configure).
"""

from __future__ import annotations

import hmac
import json
import re
from datetime import datetime
from typing import NamedTuple

from pumasi.sharing.models import Device, Zone
from pumasi.sharing.services import IncomingReading, IngestError, verify_signature


class DeviceKey(NamedTuple):
    external_id: str
    secret: str


FRACTION = re.compile(r"(\.\d{6})\d+")
MAX_BODY = 64 * 1024


def _json(raw: bytes) -> dict:
    if len(raw) > MAX_BODY:
        raise IngestError(413, "too_large", f"The body is larger than {MAX_BODY} bytes.")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IngestError(422, "malformed", f"The body is not JSON: {exc}.") from exc
    if not isinstance(data, dict):
        raise IngestError(422, "malformed", "The body must be a JSON object.")
    return data


def parse_time(value, field: str) -> datetime:
    if not isinstance(value, str):
        raise IngestError(422, "malformed", f"'{field}' must be an RFC 3339 time.")
    try:
        parsed = datetime.fromisoformat(FRACTION.sub(r"\1", value.replace("Z", "+00:00")))
    except ValueError as exc:
        raise IngestError(422, "malformed", f"'{field}' is not an RFC 3339 time.") from exc
    if parsed.tzinfo is None:
        raise IngestError(422, "malformed", f"'{field}' needs a time zone offset.")
    return parsed


def _occupied(values: dict, where: str) -> bool:
    """Accepts the usual encodings of a parking sensor's decoder."""
    for key in ("occupied", "occupancy", "status", "parkingStatus", "car"):
        if key not in values:
            continue
        value = values[key]
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.lower() in ("occupied", "free", "vacant", "1", "0"):
            return value.lower() in ("occupied", "1")
        raise IngestError(422, "malformed", f"'{where}.{key}' must be true/false, 0/1 or occupied/free.")
    raise IngestError(422, "malformed", f"'{where}' has no occupancy ('occupied': true/false).")


def _battery(values: dict, where: str) -> int | None:
    for key in ("battery", "battery_percent", "batteryLevel"):
        if key in values and values[key] is not None:
            value = values[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
                raise IngestError(422, "malformed", f"'{where}.{key}' must be a percentage from 0 to 100.")
            return int(value)
    return None


def _counter(value, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise IngestError(422, "malformed", f"'{field}' must be a whole number from 0.")
    return value


def _device(external_id, zone: Zone | None = None) -> Device:
    if not isinstance(external_id, str) or not external_id:
        raise IngestError(422, "malformed", "The device id is missing.")
    query = Device.objects.filter(external_id=external_id.lower(), retired_at__isnull=True)
    if zone is not None:
        query = query.filter(zone=zone)
    device = query.first()
    if device is None:
        raise IngestError(404, "unknown_device", f"No active device '{external_id}'.")
    return device


def parse_signed(raw: bytes, signature: str | None, devices: dict[str, DeviceKey] | None = None
                 ) -> tuple[IncomingReading, Device | DeviceKey]:
    """The HTTP JSON format (and the MQTT body): find the device, check its signature, read the
    fields. `devices` (external id -> active device), when given, replaces the lookup (a batch
    looks its devices up at once)."""
    data = _json(raw)
    if devices is None:
        device = _device(data.get("device"))
    else:
        external_id = data.get("device")
        if not isinstance(external_id, str) or not external_id:
            raise IngestError(422, "malformed", "The device id is missing.")
        device = devices.get(external_id.lower())
        if device is None:
            raise IngestError(404, "unknown_device", f"No active device '{external_id}'.")
    if not verify_signature(device.secret, raw, signature):
        raise IngestError(401, "bad_signature", "The signature does not match this device's secret.")
    if "measured_at" not in data:
        raise IngestError(422, "malformed", "'measured_at' is missing.")
    reading = IncomingReading(
        external_id=device.external_id, occupied=_occupied(data, "body"),
        measured_at=parse_time(data["measured_at"], "measured_at"), battery=_battery(data, "body"),
        fcnt=_counter(data.get("seq"), "seq"),
    )
    return reading, device


def _envelope(payload: bytes) -> tuple[str, str]:
    envelope = _json(payload)
    body, signature = envelope.get("body"), envelope.get("signature")
    if not isinstance(body, str) or not isinstance(signature, str):
        raise IngestError(422, "malformed", "An MQTT message is {\"body\": \"<JSON text>\", \"signature\": \"sha256=…\"}.")
    return body, signature


def _check_topic(topic: str, device: Device | DeviceKey) -> None:
    parts = topic.split("/")
    if len(parts) < 2 or parts[-1] != "up" or parts[-2].lower() != device.external_id:
        raise IngestError(422, "malformed", f"Topic '{topic}' does not end in '{device.external_id}/up'.")


def parse_mqtt(topic: str, payload: bytes) -> tuple[IncomingReading, Device]:
    body, signature = _envelope(payload)
    reading, device = parse_signed(body.encode("utf-8"), signature)
    _check_topic(topic, device)
    return reading, device


def parse_mqtt_many(messages: list[tuple[str, bytes]]) -> list[IncomingReading | IngestError]:
    """Parse and authenticate a batch of MQTT messages with one device lookup: for each message, its
    reading or why it was refused (the same answers as `parse_mqtt` one by one)."""
    envelopes: list[tuple[str, str] | IngestError] = []
    wanted = set()
    for topic, payload in messages:
        try:
            envelopes.append(_envelope(payload))
        except IngestError as error:
            envelopes.append(error)
            continue
        parts = topic.split("/")
        if len(parts) >= 2:
            wanted.add(parts[-2].lower())
    # Just the id and secret: checking signatures needs no more, and a batch needs hundreds.
    devices = {external_id: DeviceKey(external_id, secret) for external_id, secret in Device.objects.filter(
        external_id__in=wanted, retired_at__isnull=True).values_list("external_id", "secret")}
    results: list[IncomingReading | IngestError] = []
    for (topic, _payload), envelope in zip(messages, envelopes, strict=True):
        if isinstance(envelope, IngestError):
            results.append(envelope)
            continue
        body, signature = envelope
        try:
            raw = body.encode("utf-8")
            try:
                reading, device = parse_signed(raw, signature, devices)
            except IngestError as error:
                if error.reason != "unknown_device":
                    raise
                # Not under the topic's name: the body may name a device of another topic (refused
                # below by the topic check, as one by one), so look it up as the single path does.
                reading, device = parse_signed(raw, signature)
            _check_topic(topic, device)
        except IngestError as error:
            results.append(error)
            continue
        results.append(reading)
    return results


def check_zone_secret(zone: Zone, supplied: str | None) -> None:
    if not supplied or not hmac.compare_digest(supplied.strip().encode(), zone.ingest_secret.encode()):
        raise IngestError(401, "bad_secret", "The integration secret is wrong or missing.")


def parse_tts(raw: bytes, zone: Zone) -> tuple[IncomingReading, Device]:
    data = _json(raw)
    ids = data.get("end_device_ids")
    uplink = data.get("uplink_message")
    if not isinstance(ids, dict) or not isinstance(uplink, dict):
        raise IngestError(422, "malformed", "Not a The Things Stack uplink: 'end_device_ids' or 'uplink_message' missing.")
    device = _device(ids.get("device_id"), zone)
    decoded = uplink.get("decoded_payload")
    if not isinstance(decoded, dict):
        raise IngestError(422, "malformed", "'uplink_message.decoded_payload' is missing: add a payload formatter.")
    when = uplink.get("received_at") or data.get("received_at")
    if when is None:
        raise IngestError(422, "malformed", "'received_at' is missing.")
    reading = IncomingReading(
        external_id=device.external_id, occupied=_occupied(decoded, "uplink_message.decoded_payload"),
        measured_at=parse_time(when, "received_at"), battery=_battery(decoded, "uplink_message.decoded_payload"),
        fcnt=_counter(uplink.get("f_cnt", 0), "uplink_message.f_cnt"),
    )
    return reading, device


def parse_chirpstack(raw: bytes, zone: Zone) -> tuple[IncomingReading, Device]:
    data = _json(raw)
    info = data.get("deviceInfo")
    if not isinstance(info, dict):
        raise IngestError(422, "malformed", "Not a ChirpStack uplink: 'deviceInfo' is missing.")
    device = _device(info.get("devEui"), zone)
    decoded = data.get("object")
    if not isinstance(decoded, dict):
        raise IngestError(422, "malformed", "'object' is missing: add a codec to the device profile.")
    if data.get("time") is None:
        raise IngestError(422, "malformed", "'time' is missing.")
    reading = IncomingReading(
        external_id=device.external_id, occupied=_occupied(decoded, "object"),
        measured_at=parse_time(data["time"], "time"), battery=_battery(decoded, "object"),
        fcnt=_counter(data.get("fCnt", 0), "fCnt"),
    )
    return reading, device
