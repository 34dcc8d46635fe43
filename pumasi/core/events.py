"""Domain events: published inside a service's transaction, delivered only after it commits.

Delivery goes three ways: to in-process handlers registered with `on_event`, to the job
queue (one `deliver_events_job` per transaction) for slow work, and to browsers through the live stream. The
event row itself is the source of truth; the live bus only says "there is something new
after id N", through Redis pub/sub when PUMASI_REDIS_URL is set, else inside the process
(plus a short poll, so several processes on one SQLite file still see each other).
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction

logger = logging.getLogger("pumasi.events")

EventHandler = Callable[[Any], None]
_handlers: dict[str, list[EventHandler]] = defaultdict(list)
_local_listeners: list[Callable[[int], None]] = []
_listeners_lock = threading.Lock()
REDIS_CHANNEL = "pumasi:events"


def on_event(name: str) -> Callable[[EventHandler], EventHandler]:
    """Register an in-process handler for an event name ("*" for all). Handlers must be idempotent."""

    def register(handler: EventHandler) -> EventHandler:
        if handler not in _handlers[name]:
            _handlers[name].append(handler)
        return handler

    return register


def publish_event(*, name: str, community=None, payload: dict | None = None, recipient=None):
    """Write the event in the caller's transaction and schedule its delivery after commit."""
    from pumasi.platform.models import Event

    event = Event.objects.create(name=name, community=community, recipient=recipient, payload=payload or {})
    _deliver_after_commit([event])
    return event


def publish_events(events: list[dict]) -> list:
    """Several events (each the keyword arguments of `publish_event`) written with one INSERT (a
    sensor batch makes hundreds), then delivered after commit like `publish_event`'s."""
    from pumasi.platform.models import Event

    if not events:
        return []
    created = Event.objects.bulk_create([
        Event(name=e["name"], community=e.get("community"), recipient=e.get("recipient"), payload=e.get("payload") or {})
        for e in events])
    _deliver_after_commit(created)
    return created


class _Batch(list):
    """The events of one transaction (or savepoint), delivered together after it commits: one job
    and one live announcement per transaction instead of one per event. A batch of sensor readings
    publishes hundreds of events, and delivering them one by one cost more than applying them."""

    def __init__(self, connection):
        super().__init__()
        self.connection = connection
        self.savepoints = set(connection.savepoint_ids)
        self.hook = self.flush  # the one bound method registered, so it can be found again

    def flush(self) -> None:
        if getattr(self.connection, "pumasi_event_batch", None) is self:
            self.connection.pumasi_event_batch = None
        dispatch_events(list(self))


def _deliver_after_commit(events: list) -> None:
    connection = transaction.get_connection()
    if not connection.in_atomic_block:  # autocommit: the rows are committed already
        dispatch_events(events)
        return
    batch = getattr(connection, "pumasi_event_batch", None)
    # Join the open batch only at the same savepoint depth and while its commit hook is still
    # queued: a rolled-back savepoint or transaction discards the hook along with its events.
    if (batch is None or batch.savepoints != set(connection.savepoint_ids)
            or not any(hook is batch.hook for _sids, hook, _robust in connection.run_on_commit)):
        batch = _Batch(connection)
        connection.pumasi_event_batch = batch
        # robust: a failing delivery must not stop the transaction's other commit hooks.
        transaction.on_commit(batch.hook, robust=True)
    batch.extend(events)


def dispatch_event(event_id: int) -> None:
    from pumasi.platform.models import Event

    event = Event.objects.filter(pk=event_id).select_related("community").first()
    if event is not None:
        dispatch_events([event])


def dispatch_events(events: list) -> None:
    """Deliver committed events: in-process handlers one by one, then one job and one announcement."""
    from pumasi.platform import tasks

    if not events:
        return
    for event in events:
        for handler in [*_handlers.get(event.name, ()), *_handlers.get("*", ())]:
            try:
                handler(event)
            except Exception:  # one broken handler must not stop delivery to the rest
                logger.exception("event handler %r failed for %s", handler, event)
    try:
        tasks.deliver_events([event.pk for event in events])
    except Exception:
        logger.exception("could not queue events %s..%s", events[0].pk, events[-1].pk)
    # Live streams fetch everything after the last id they saw, so one announcement covers all.
    announce(max(event.pk for event in events))


def announce(event_id: int) -> None:
    """Tell live streams, in this process and (with Redis) in every other, that event_id exists."""
    with _listeners_lock:
        listeners = list(_local_listeners)
    for listener in listeners:
        try:
            listener(event_id)
        except Exception:  # the publishing request has committed; it must not fail now
            logger.exception("live listener %r failed for event %s", listener, event_id)
    if settings.REDIS_URL:
        try:
            redis_client().publish(REDIS_CHANNEL, str(event_id))
        except Exception:
            logger.exception("could not announce event %s on Redis", event_id)


def add_local_listener(listener: Callable[[int], None]) -> None:
    with _listeners_lock:
        if listener not in _local_listeners:
            _local_listeners.append(listener)


def remove_local_listener(listener: Callable[[int], None]) -> None:
    with _listeners_lock:
        if listener in _local_listeners:
            _local_listeners.remove(listener)


_redis: tuple[str, Any] | None = None  # (url, client): a changed setting (tests) gets a new client


def redis_client():
    global _redis
    if _redis is None or _redis[0] != settings.REDIS_URL:
        import redis

        # Short timeouts: an unreachable Redis must not hang the request that published.
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
        _redis = (settings.REDIS_URL, client)
    return _redis[1]
