"""The application `pumasi run` serves: live streams natively in asyncio, every other request
through Django's WSGI app on a thread pool.

Why not Django's own ASGI handler: measured here it serves ~500 req/s against ~2,600 for
this router (see bench/serving). Why not plain WSGI: a stream would pin a thread for as long
as a browser stays open. So the streams (`/events/stream`, text/event-stream) are served by
the `StreamHub` below and everything else by Django's WSGI app.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pumasi.settings")

from a2wsgi import WSGIMiddleware  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import close_old_connections  # noqa: E402

from pumasi.core import events as event_bus  # noqa: E402
from pumasi.wsgi import application as django_application  # noqa: E402

logger = logging.getLogger("pumasi.stream")
STREAM_PATH = "/events/stream"
KEEPALIVE_SECONDS = 15.0
# Without Redis, other processes' events are found by this poll; with Redis they are announced.
POLL_SECONDS = 5.0 if settings.REDIS_URL else 0.5

wsgi_app = WSGIMiddleware(django_application, workers=int(os.environ.get("PUMASI_THREADS", "16")))


class Subscriber:
    def __init__(self, user_id: int | None, community_ids: set[int]):
        self.user_id = user_id
        self.community_ids = community_ids
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=1000)

    def offer(self, event) -> None:
        if event.name in ("communities.member_joined", "communities.member_left") and (
            event.payload.get("user_id") == self.user_id
        ):
            if event.name == "communities.member_joined":
                self.community_ids.add(event.community_id)
            else:
                self.community_ids.discard(event.community_id)
        visible = (event.recipient_id is not None and event.recipient_id == self.user_id) or (
            event.recipient_id is None and event.community_id in self.community_ids
        )
        if visible:
            try:
                self.queue.put_nowait(event)
            except asyncio.QueueFull:
                logger.warning("stream subscriber %s is too slow; dropping event %s", self.user_id, event.pk)


def _fetch_after(after_id: int) -> list:
    from pumasi.platform.models import Event

    close_old_connections()
    try:
        return list(Event.objects.filter(pk__gt=after_id).order_by("pk")[:500])
    finally:
        close_old_connections()


def _last_event_id() -> int:
    from pumasi.platform.selectors import last_event_id

    close_old_connections()
    try:
        return last_event_id()
    finally:
        close_old_connections()


class StreamHub:
    """One per process: learns of new events (local call, Redis message or poll), reads them
    from the database once, and hands each to the subscribers allowed to see it."""

    def __init__(self) -> None:
        self.subscribers: set[Subscriber] = set()
        self.last_id = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self.wake: asyncio.Event | None = None
        self.started = False

    async def ensure_started(self) -> None:
        if self.started:
            return
        self.started = True
        self.loop = asyncio.get_running_loop()
        self.wake = asyncio.Event()
        self.last_id = await asyncio.to_thread(_last_event_id)
        event_bus.add_local_listener(self._announced)
        asyncio.ensure_future(self._run())
        if settings.REDIS_URL:
            asyncio.ensure_future(self._listen_redis())

    def _announced(self, event_id: int) -> None:
        if self.loop is not None and self.wake is not None:
            self.loop.call_soon_threadsafe(self.wake.set)

    async def _listen_redis(self) -> None:
        import redis.asyncio as aioredis

        while True:
            try:
                client = aioredis.Redis.from_url(settings.REDIS_URL)
                pubsub = client.pubsub()
                await pubsub.subscribe(event_bus.REDIS_CHANNEL)
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self.wake.set()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("lost Redis; reconnecting")
                self.wake.set()  # catch up by reading the database
                await asyncio.sleep(1)

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self.wake.wait(), timeout=POLL_SECONDS)
            except TimeoutError:
                pass
            self.wake.clear()
            try:
                batch = await asyncio.to_thread(_fetch_after, self.last_id)
            except Exception:
                logger.exception("could not read new events")
                await asyncio.sleep(1)
                continue
            for event in batch:
                for subscriber in list(self.subscribers):
                    subscriber.offer(event)
                self.last_id = event.pk
            if len(batch) == 500:
                self.wake.set()


hub = StreamHub()


def _stream_identity(headers: dict[bytes, bytes]) -> tuple[int, set[int]] | None:
    """Who is asking: a session cookie or a bearer token. Returns (user id, community ids)."""
    from importlib import import_module

    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.utils.crypto import constant_time_compare

    from pumasi.communities.selectors import community_ids_of
    from pumasi.platform.selectors import active_token_for_secret

    close_old_connections()
    try:
        user = None
        auth = headers.get(b"authorization", b"").decode("latin-1")
        if auth.lower().startswith("bearer "):
            token = active_token_for_secret(auth[7:].strip())
            if token is not None and "read" in token.scopes:
                user = token.user
        else:
            cookie = SimpleCookie()
            cookie.load(headers.get(b"cookie", b"").decode("latin-1"))
            morsel = cookie.get(settings.SESSION_COOKIE_NAME)
            if morsel is not None:
                store = import_module(settings.SESSION_ENGINE).SessionStore(morsel.value)
                user_id = store.get(SESSION_KEY)
                if user_id is not None and store.get(BACKEND_SESSION_KEY):
                    candidate = get_user_model().objects.filter(pk=user_id, is_active=True).first()
                    # The same check Django's get_user makes: a changed password ends old sessions.
                    if candidate is not None and constant_time_compare(
                        store.get(HASH_SESSION_KEY, ""), candidate.get_session_auth_hash()
                    ):
                        user = candidate
        if user is None:
            return None
        return user.pk, community_ids_of(user.pk)
    finally:
        close_old_connections()


def _backlog(after_id: int, user_id: int, community_ids: set[int]) -> list:
    from pumasi.platform.selectors import events_after

    close_old_connections()
    try:
        return events_after(after_id=after_id, community_ids=community_ids, user_id=user_id)
    finally:
        close_old_connections()


def _format(event) -> bytes:
    data = json.dumps(
        {
            "id": event.pk,
            "name": event.name,
            "community_id": event.community_id,
            "payload": event.payload,
            "created_at": event.created_at.isoformat(),
        },
        ensure_ascii=False,
    )
    return f"id: {event.pk}\nevent: {event.name}\ndata: {data}\n\n".encode()


async def serve_stream(scope, receive, send) -> None:
    headers = {k.lower(): v for k, v in scope.get("headers", [])}
    identity = await asyncio.to_thread(_stream_identity, headers)
    if identity is None:
        body = json.dumps(
            {"type": "about:blank", "title": "Authentication required.", "status": 401, "code": "unauthenticated"}
        ).encode()
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        return
    user_id, community_ids = identity
    await hub.ensure_started()
    query = parse_qs(scope.get("query_string", b"").decode())
    raw_last = headers.get(b"last-event-id", b"").decode() or (query.get("last_event_id") or [""])[0]
    subscriber = Subscriber(user_id, set(community_ids))
    hub.subscribers.add(subscriber)
    try:
        last_sent = int(raw_last) if raw_last.isdigit() else hub.last_id
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no"),
        ]})
        await send({"type": "http.response.body", "body": b"retry: 2000\n: connected\n\n", "more_body": True})
        if raw_last.isdigit():
            for event in await asyncio.to_thread(_backlog, last_sent, user_id, subscriber.community_ids):
                await send({"type": "http.response.body", "body": _format(event), "more_body": True})
                last_sent = event.pk
        disconnected = asyncio.ensure_future(_wait_disconnect(receive))
        while not disconnected.done():
            getter = asyncio.ensure_future(subscriber.queue.get())
            done, _pending = await asyncio.wait({getter, disconnected}, timeout=KEEPALIVE_SECONDS,
                                                return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                event = getter.result()
                if event.pk > last_sent:
                    await send({"type": "http.response.body", "body": _format(event), "more_body": True})
                    last_sent = event.pk
            else:
                getter.cancel()
                if not disconnected.done():
                    await send({"type": "http.response.body", "body": b": keepalive\n\n", "more_body": True})
    except (OSError, RuntimeError, asyncio.CancelledError):
        pass  # the client went away
    finally:
        hub.subscribers.discard(subscriber)


async def _wait_disconnect(receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def _lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def application(scope, receive, send) -> None:
    kind = scope["type"]
    if kind == "http" and scope["path"] == STREAM_PATH:
        await serve_stream(scope, receive, send)
    elif kind == "lifespan":
        await _lifespan(receive, send)
    else:
        await wsgi_app(scope, receive, send)
