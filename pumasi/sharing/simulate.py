"""A parking simulator for the demo and the benchmarks: cars come and go in a zone the way they do
in the Doksan alley, and each space's sensor sends real signed readings through the real HTTP
endpoint or the MQTT broker (`pumasi simulate parking --zone SLUG --days N --speed X --via http|mqtt`).

The model runs on a simulated clock, `speed` times faster than the wall clock and starting now:
- residents (the holders) leave on weekday mornings (most around 08:00) and come back in the
  evening (most around 19:00); at weekends fewer go out, late morning, for a few hours. Back
  home, a resident parks in their own space, or in any free shared space (the holders share
  among themselves), or is turned away;
- visitors arrive through the day (09:00–18:00, Monday to Saturday), stay 15 minutes to 4 hours,
  and take any free shared space; they respect the board's "permit holders only now" (the
  zone's real rules at the real moment, since the server judges by the real clock), except the
  occasional one who parks anyway — a violation the committee sees.
- sensors stamp a reading with the real time it is sent, and repeat their state every
  `interval_seconds` of real time as real sensors do (so a space never turns *unknown*). A
  sensor that had already gone quiet before the start (a broken one) stays quiet.
"""

from __future__ import annotations

import heapq
import http.client
import json
import logging
import math
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlparse

from django.utils import timezone

from pumasi.sharing import policy, selectors, services
from pumasi.sharing.models import Device, Resource, Zone

logger = logging.getLogger("pumasi.sharing.simulate")

VISITORS_PER_HOUR_PER_10_SPACES = 2.5
VIOLATOR_SHARE = 0.03


@dataclass
class Space:
    code: str
    device: str
    secret: str
    seq: int
    interval: float
    shared: bool
    holder_id: int | None
    occupied: bool = False
    car: str | None = None  # "resident:<holder id>" or "visitor"
    last_sent: float = 0.0
    last_measured: datetime | None = None


@dataclass(order=True)
class Happening:
    at: datetime
    what: str = field(compare=False)
    who: int | None = field(default=None, compare=False)  # a holder id for residents
    space: str | None = field(default=None, compare=False)


class HttpTransport:
    """POSTs signed readings to /api/v1/sharing/readings on one kept-alive connection; waits
    (and retries) while the server is starting or restarting."""

    def __init__(self, base_url: str, patience: float = 60.0):
        parsed = urlparse(base_url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or (443 if parsed.scheme == "https" else 80)
        self.https = parsed.scheme == "https"
        self.patience = patience
        self.connection = None

    def _connect(self):
        kind = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        return kind(self.host, self.port, timeout=10)

    def send(self, space: Space, body: dict) -> str:
        raw = json.dumps(body, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "X-Pumasi-Signature": services.sign(space.secret, raw)}
        deadline = time.monotonic() + self.patience
        while True:
            try:
                if self.connection is None:
                    self.connection = self._connect()
                self.connection.request("POST", "/api/v1/sharing/readings", raw, headers)
                response = self.connection.getresponse()
                answer = response.read()
            except (OSError, http.client.HTTPException):
                self.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
                continue
            if response.status in (200, 202):
                return json.loads(answer)["result"]
            logger.warning("reading of %s refused: %s %s", space.device, response.status, answer[:200])
            return "refused"

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


class MqttTransport:
    def __init__(self, url: str, prefix: str):
        from pumasi.sharing import mqtt

        self.mqtt = mqtt
        self.prefix = prefix
        self.client = mqtt.connect(url)
        self.client.loop_start()

    def send(self, space: Space, body: dict) -> str:
        self.client.publish(f"{self.prefix}/{space.device}/up", self.mqtt.envelope(body, space.secret), qos=1)
        return "sent"

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class ParkingSimulation:
    def __init__(self, zone: Zone, *, speed: float, transport, seed: int | None = None,
                 start: datetime | None = None, log=None):
        self.zone = zone
        self.speed = max(speed, 0.001)
        self.transport = transport
        self.rng = random.Random(seed)
        self.tz = policy.tz_of(zone.time_zone)
        self.log = log or (lambda text: None)
        self.real_start = time.monotonic()
        self.sim_start = start or timezone.now()
        self.queue: list[Happening] = []
        self.spaces: dict[str, Space] = {}
        self.counts = {"readings": 0, "arrivals": 0, "departures": 0, "turned_away": 0, "violators": 0}
        self.day_counts = dict(self.counts)
        self._rules_at = -math.inf
        now = timezone.now()
        for device in Device.objects.filter(zone=zone, retired_at__isnull=True, resource__isnull=False,
                                            resource__retired_at__isnull=True).select_related("resource"):
            if device.last_seen_at and (now - device.last_seen_at).total_seconds() > zone.sensor_silence_seconds:
                continue  # a broken sensor stays broken
            resource = device.resource
            space = Space(code=resource.code, device=device.external_id, secret=device.secret,
                          seq=(device.last_fcnt or 0) + 1, interval=float(device.interval_seconds),
                          shared=not resource.is_private, holder_id=resource.holder_id,
                          occupied=resource.occupancy == Resource.Occupancy.OCCUPIED,
                          last_measured=device.last_measured_at)
            if space.occupied:
                space.car = f"resident:{space.holder_id}" if space.holder_id else "visitor"
                if space.car == "visitor":
                    self._schedule(self.sim_start + self._stay(), "leave", space=space.code)
            self.spaces[space.code] = space
        self.residents = sorted({s.holder_id for s in self.spaces.values() if s.holder_id})
        self.away: set[int] = set()
        self.home_space: dict[int, str] = {}
        for space in self.spaces.values():
            if space.holder_id:
                self.home_space[space.holder_id] = space.code
                if not space.occupied:
                    self.away.add(space.holder_id)  # out now; back this evening
        self._plan_day(self.sim_start.astimezone(self.tz).date(), from_now=True)

    # --- the model -----------------------------------------------------------------------------

    def _schedule(self, at: datetime, what: str, who: int | None = None, space: str | None = None) -> None:
        heapq.heappush(self.queue, Happening(at, what, who, space))

    def _local(self, day, hours: float) -> datetime:
        hours = min(max(hours, 0.0), 23.99)
        naive = datetime.combine(day, datetime.min.time()) + timedelta(hours=hours)
        return naive.replace(tzinfo=self.tz).astimezone(UTC)

    def _stay(self) -> timedelta:
        minutes = min(240.0, max(15.0, self.rng.lognormvariate(math.log(75), 0.6)))
        return timedelta(minutes=minutes)

    def _plan_day(self, day, from_now: bool = False) -> None:
        """Everything that will happen on this local day, put on the queue; plans the next day at its end."""
        weekday = day.weekday()
        earliest = self.sim_start if from_now else self._local(day, 0)
        for holder in self.residents:
            if weekday < 5 and self.rng.random() < 0.8:
                leave = self._local(day, self.rng.gauss(8.0, 0.8))
                back = self._local(day, self.rng.gauss(19.0, 1.4))
            elif weekday >= 5 and self.rng.random() < 0.4:
                leave = self._local(day, self.rng.uniform(10, 15))
                back = leave + timedelta(hours=self.rng.uniform(2, 6))
            else:
                if holder in self.away:  # out when the simulation began: back in the evening
                    self._schedule(max(earliest, self._local(day, self.rng.gauss(19.0, 1.4))), "return", holder)
                continue
            if back <= leave:
                back = leave + timedelta(hours=1)
            if leave >= earliest and holder not in self.away:
                self._schedule(leave, "leave_home", holder)
            if back >= earliest:
                self._schedule(back, "return", holder)
        if weekday < 6:
            rate = VISITORS_PER_HOUR_PER_10_SPACES * max(len(self.spaces), 1) / 10
            at = self._local(day, 9)
            end = self._local(day, 18)
            while True:
                at += timedelta(hours=self.rng.expovariate(rate))
                if at >= end:
                    break
                if at >= earliest:
                    self._schedule(at, "visitor")
        # The odd car at night, parked where only the holders may park.
        if self.rng.random() < 0.3:
            self._schedule(max(earliest, self._local(day, self.rng.uniform(21, 23.9))), "night_visitor")
        self._schedule(self._local(day, 23.99) + timedelta(seconds=36), "new_day")

    def _free_shared(self, prefer: str | None = None) -> Space | None:
        if prefer and not self.spaces[prefer].occupied:
            return self.spaces[prefer]
        free = [s for s in self.spaces.values() if s.shared and not s.occupied]
        return self.rng.choice(free) if free else None

    def _open_to_anyone(self) -> bool:
        """The zone's real rules at the real moment, as the board shows them (read once a minute)."""
        if time.monotonic() - self._rules_at > 60:
            self._rules_at = time.monotonic()
            self._rules = selectors.rules_for(self.zone, Resource.Kind.PARKING_SPACE)
            self._holidays = selectors.holidays_for(self.zone)
        now = timezone.now()
        return any(rule.audience == policy.ANYONE for rule in policy.covering_rules(now, self._rules, self.tz,
                                                                                     self._holidays))

    def _park(self, space: Space, car: str) -> None:
        space.occupied, space.car = True, car
        self.counts["arrivals"] += 1
        self._send(space)

    def _leave(self, space: Space) -> None:
        space.occupied, space.car = False, None
        self.counts["departures"] += 1
        self._send(space)

    def _happen(self, item: Happening) -> None:
        if item.what == "new_day":
            self._report(item.at)
            self._plan_day((item.at + timedelta(minutes=1)).astimezone(self.tz).date())
        elif item.what == "leave_home":
            parked = next((s for s in self.spaces.values() if s.car == f"resident:{item.who}"), None)
            if parked is not None:
                self._leave(parked)
            self.away.add(item.who)
        elif item.what == "return":
            if item.who not in self.away:
                return
            self.away.discard(item.who)
            own = self.home_space.get(item.who)
            space = self._free_shared(prefer=own) if own else None
            if space is None:
                self.counts["turned_away"] += 1
                return
            self._park(space, f"resident:{item.who}")
        elif item.what in ("visitor", "night_visitor"):
            if item.what == "visitor" and not self._open_to_anyone() and self.rng.random() > VIOLATOR_SHARE:
                self.counts["turned_away"] += 1
                return
            space = self._free_shared()
            if space is None:
                self.counts["turned_away"] += 1
                return
            if item.what == "night_visitor":
                self.counts["violators"] += 1
                stay = timedelta(hours=self.rng.uniform(1, 6))
            else:
                stay = self._stay()
            self._park(space, "visitor")
            self._schedule(item.at + stay, "leave", space=space.code)
        elif item.what == "leave":
            space = self.spaces[item.space]
            if space.car == "visitor":
                self._leave(space)

    # --- sensors ---------------------------------------------------------------------------------

    def _send(self, space: Space) -> None:
        measured = timezone.now()
        if space.last_measured is not None and measured <= space.last_measured:
            measured = space.last_measured + timedelta(microseconds=1)
        body = {"device": space.device, "occupied": space.occupied, "measured_at": measured.isoformat(),
                "seq": space.seq, "battery": 90}
        self.transport.send(space, body)
        space.seq += 1
        space.last_measured = measured
        space.last_sent = time.monotonic()
        self.counts["readings"] += 1

    def _heartbeats(self) -> float:
        """Repeat each sensor's state once per its interval; returns seconds until the next is due."""
        now = time.monotonic()
        due = math.inf
        for space in self.spaces.values():
            when = space.last_sent + space.interval * 0.9
            if when <= now:
                self._send(space)
                when = now + space.interval * 0.9
            due = min(due, when - now)
        return due

    def _report(self, at: datetime) -> None:
        delta = {k: self.counts[k] - self.day_counts[k] for k in self.counts}
        self.day_counts = dict(self.counts)
        self.log(f"{at.astimezone(self.tz):%Y-%m-%d %a}: {delta['arrivals']} arrivals, {delta['departures']} "
                 f"departures, {delta['turned_away']} turned away, {delta['violators']} night parkers, "
                 f"{delta['readings']} readings")

    def sim_now(self) -> datetime:
        return self.sim_start + timedelta(seconds=(time.monotonic() - self.real_start) * self.speed)

    def run(self, *, days: float | None, stop=None) -> dict[str, int]:
        """Until `days` simulated days have passed (None: until `stop` is set)."""
        end = None if days is None else self.sim_start + timedelta(days=days)
        for space in self.spaces.values():  # every sensor reports its state as the simulation starts
            self._send(space)
        while stop is None or not stop.is_set():
            heartbeat_in = self._heartbeats()
            if not self.queue:
                break
            upcoming = self.queue[0]
            if end is not None and upcoming.at >= end:
                break
            wait = (upcoming.at - self.sim_now()).total_seconds() / self.speed
            if wait > 0:
                time.sleep(min(wait, heartbeat_in, 1.0))
                continue
            self._happen(heapq.heappop(self.queue))
        return dict(self.counts)
