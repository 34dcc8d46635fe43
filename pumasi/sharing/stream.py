"""The public live stream of a zone's board (`/z/<slug>/board/stream`, text/event-stream), served
natively by the ASGI router so that a signed-out display at the alley entrance is pushed every
change without holding a Django thread.

It rides on the router's per-process `StreamHub`: a `BoardSubscriber` joins the hub's fan-out and
is offered every new event; it keeps only the `sharing.*` events that change what this zone's
board shows (and only the zone-wide ones, never a personal copy), and answers each burst of them
with the whole board — counts, spaces, FULL — as JSON plus the rendered fragment, computed once
per zone and change however many displays watch it. The board is state, not a log, so a display
that reconnects simply gets the current board first.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re

from django.db import close_old_connections

logger = logging.getLogger("pumasi.sharing.stream")

PATH_RE = re.compile(r"^/z/(?P<slug>[a-z0-9][a-z0-9-]{1,58}[a-z0-9])/board/stream$")
# What changes the board: a space's state, the set of spaces, who may park now, violations.
BOARD_EVENTS = frozenset({
    "sharing.occupancy_changed", "sharing.resource_added", "sharing.resource_retired", "sharing.holder_assigned",
    "sharing.holder_opted_in", "sharing.holder_opted_out", "sharing.violation", "sharing.session_claimed",
    "sharing.sensor_silent", "sharing.policy_changed",
})
KEEPALIVE_SECONDS = 15.0
# A sensor that falls silent turns its space to unknown without any event; a fresh board this
# often shows it (the sweep's sensor_silent event usually comes first).
REFRESH_SECONDS = 30.0


def match(path: str) -> str | None:
    """The zone slug when the path is a board stream, else None."""
    found = PATH_RE.match(path)
    return found.group("slug") if found else None


def is_board_event(event, zone_id: int, community_id: int, slug: str) -> bool:
    return (event.recipient_id is None and event.community_id == community_id and event.name in BOARD_EVENTS
            and isinstance(event.payload, dict) and event.payload.get("zone") == slug)


class BoardSubscriber:
    """Offered every event by the hub (on the event loop); marks the board dirty when one matters."""

    def __init__(self, zone_id: int, community_id: int, slug: str):
        self.zone_id = zone_id
        self.community_id = community_id
        self.slug = slug
        self.dirty = asyncio.Event()
        self.last_event_id = 0
        # An event committed after a newer one was seen (PostgreSQL id gaps): recompute anyway.
        self.late = False

    def offer(self, event, late: bool = False) -> None:
        if is_board_event(event, self.zone_id, self.community_id, self.slug):
            self.last_event_id = max(self.last_event_id, event.pk)
            self.late = self.late or late
            self.dirty.set()


def _public_zone(slug: str):
    from pumasi.sharing.models import Zone

    close_old_connections()
    try:
        return Zone.objects.filter(slug=slug, public_board=True).values("pk", "community_id").first()
    finally:
        close_old_connections()


def board_payload(zone_id: int) -> dict | None:
    """What the display needs: the board as JSON and as the rendered fragment. None when the zone
    is gone or its board is no longer public."""
    from django.template.loader import render_to_string

    from pumasi.sharing import selectors
    from pumasi.sharing.models import Zone

    close_old_connections()
    try:
        zone = Zone.objects.select_related("community").filter(pk=zone_id, public_board=True).first()
        if zone is None:
            return None
        board = selectors.board(zone)
        html = render_to_string("sharing/_board.html", {"zone": zone, "b": board})
        return {"board": board, "html": html}
    finally:
        close_old_connections()


class _Cache:
    """The latest board per zone with the newest event it reflects, so many displays of one zone
    cost one computation per change."""

    def __init__(self) -> None:
        self.latest: dict[int, tuple[int, bytes | None]] = {}
        self.locks: dict[int, asyncio.Lock] = {}

    async def get(self, zone_id: int, event_id: int, force: bool = False) -> bytes | None:
        lock = self.locks.setdefault(zone_id, asyncio.Lock())
        async with lock:
            cached = self.latest.get(zone_id)
            if cached is not None and cached[0] >= event_id and not force:
                return cached[1]
            payload = await asyncio.to_thread(board_payload, zone_id)
            body = None if payload is None else json.dumps(payload, ensure_ascii=False).encode()
            self.latest[zone_id] = (max(event_id, cached[0] if cached else 0), body)
            return body


cache = _Cache()


def _frame(event_id: int, body: bytes) -> bytes:
    return b"id: %d\nevent: board\ndata: %s\n\n" % (event_id, body)


async def serve_board_stream(scope, receive, send, hub, slug: str) -> None:
    """Serve one display: 404 unless the zone's board is public; then the board now and after
    every change, until the display goes away."""
    zone = await asyncio.to_thread(_public_zone, slug)
    if zone is None:
        body = json.dumps({"type": "about:blank", "status": 404, "title": "No such zone.",
                           "code": "not_found"}).encode()
        await send({"type": "http.response.start", "status": 404, "headers": [
            (b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        return
    await hub.ensure_started()
    subscriber = BoardSubscriber(zone["pk"], zone["community_id"], slug)
    # Subscribe before reading the first board, so a change in between is not missed.
    hub.subscribers.add(subscriber)
    tasks = [asyncio.ensure_future(_pump(subscriber, hub, send)), asyncio.ensure_future(_wait_disconnect(receive))]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        hub.subscribers.discard(subscriber)
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, Exception) and not isinstance(result, OSError | RuntimeError):
            logger.error("board stream of %s failed", slug, exc_info=result)


async def _pump(subscriber: BoardSubscriber, hub, send) -> None:
    async def emit(body: bytes) -> None:
        await send({"type": "http.response.body", "body": body, "more_body": True})

    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"text/event-stream; charset=utf-8"),
        (b"cache-control", b"no-cache"),
        (b"x-accel-buffering", b"no"),
        (b"access-control-allow-origin", b"*"),
    ]})
    await emit(b"retry: 2000\n: connected\n\n")
    seen = hub.last_id
    body = await cache.get(subscriber.zone_id, seen, force=True)
    if body is None:
        return
    await emit(_frame(seen, body))
    loop = asyncio.get_running_loop()
    next_refresh = loop.time() + REFRESH_SECONDS
    while True:
        timeout = min(KEEPALIVE_SECONDS, max(0.0, next_refresh - loop.time()))
        try:
            await asyncio.wait_for(subscriber.dirty.wait(), timeout=timeout)
        except TimeoutError:
            if loop.time() < next_refresh:
                await emit(b": keepalive\n\n")
                continue
            body = await cache.get(subscriber.zone_id, max(seen, hub.last_id), force=True)
        else:
            subscriber.dirty.clear()
            late, subscriber.late = subscriber.late, False
            seen = max(seen, subscriber.last_event_id)
            body = await cache.get(subscriber.zone_id, seen, force=late)
        if body is None:  # the board was made private or the zone removed: end the stream
            return
        next_refresh = loop.time() + REFRESH_SECONDS
        await emit(_frame(seen, body))


async def _wait_disconnect(receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
