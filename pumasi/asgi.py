"""The application `pumasi run` serves: live streams natively in asyncio, every other request
through Django's WSGI app on a thread pool.

Why not Django's own ASGI handler: for the same bare view this router served 4-6x its requests
per second in our runs (bench/serving prints both). Why not plain WSGI: a stream would pin a
thread for as long as a browser stays open. Pure WSGI is faster on a bare view (1.6-3x this
router in our runs, on a loaded shared machine); 200 idle streams cost ~30-40 kB each. So the
streams (`/events/stream`, text/event-stream) are served by the `StreamHub` below and
everything else by Django's WSGI app.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pumasi.settings")

from a2wsgi import WSGIMiddleware  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import close_old_connections  # noqa: E402

from pumasi.core import events as event_bus  # noqa: E402
from pumasi.sharing import stream as board_stream  # noqa: E402
from pumasi.wsgi import application as django_application  # noqa: E402

logger = logging.getLogger("pumasi.stream")
STREAM_PATH = "/events/stream"
KEEPALIVE_SECONDS = 15.0
BACKLOG_PAGE = 200
# Without Redis, other processes' events are found by this poll; with Redis they are announced.
POLL_SECONDS = 5.0 if settings.REDIS_URL else 0.5
# On PostgreSQL ids are taken at insert but become visible at commit, so a smaller id can
# appear after a larger one. Skipped ids are looked for again for this long (then taken as
# rolled back).
GAP_SECONDS = 10.0

wsgi_app = WSGIMiddleware(django_application, workers=int(os.environ.get("PUMASI_THREADS", "16")))


class Subscriber:
    def __init__(self, user_id: int | None, community_ids: set[int]):
        self.user_id = user_id
        self.community_ids = community_ids
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=1000)

    def offer(self, event, late: bool = False) -> None:
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
                self.queue.put_nowait((event, late))
            except asyncio.QueueFull:
                logger.warning("stream subscriber %s is too slow; dropping event %s", self.user_id, event.pk)


def _fetch_after(after_id: int, gaps: list[int]) -> list:
    from django.db.models import Q

    from pumasi.platform.models import Event

    close_old_connections()
    try:
        return list(Event.objects.filter(Q(pk__gt=after_id) | Q(pk__in=gaps)).order_by("pk")[:500])
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
        self.gaps: dict[int, float] = {}  # id not seen yet -> when to stop waiting for it
        self.loop: asyncio.AbstractEventLoop | None = None
        self.wake: asyncio.Event | None = None
        self.started = False
        self._starting = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()  # the loop keeps only weak references to tasks

    async def ensure_started(self) -> None:
        if self.started and self.loop is asyncio.get_running_loop():
            return
        async with self._starting:  # the first streams may arrive together
            if self.started and self.loop is asyncio.get_running_loop():
                return
            self.last_id = await asyncio.to_thread(_last_event_id)
            self.loop = asyncio.get_running_loop()
            self.wake = asyncio.Event()
            event_bus.add_local_listener(self._announced)
            self._tasks = {asyncio.ensure_future(self._run())}
            if settings.REDIS_URL:
                listening = asyncio.Event()
                self._tasks.add(asyncio.ensure_future(self._listen_redis(listening)))
                try:  # so the first stream does not miss an announcement made right after it connects
                    await asyncio.wait_for(listening.wait(), timeout=2)
                except TimeoutError:
                    logger.warning("Redis is slow to answer; live events fall back to polling meanwhile")
            self.started = True

    def _announced(self, event_id: int) -> None:
        # Called from the publishing request's thread, after its commit; must never raise there.
        try:
            self.loop.call_soon_threadsafe(self.wake.set)
        except RuntimeError:  # the loop has closed (shutdown)
            event_bus.remove_local_listener(self._announced)

    async def _listen_redis(self, listening: asyncio.Event) -> None:
        import redis.asyncio as aioredis

        while True:
            try:
                async with aioredis.Redis.from_url(settings.REDIS_URL) as client, client.pubsub() as pubsub:
                    await pubsub.subscribe(event_bus.REDIS_CHANNEL)
                    listening.set()
                    self.wake.set()  # events announced while we were not listening
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
                batch = await asyncio.to_thread(_fetch_after, self.last_id, list(self.gaps))
            except Exception:
                logger.exception("could not read new events")
                await asyncio.sleep(1)
                continue
            now = time.monotonic()
            for event in batch:
                late = self.gaps.pop(event.pk, None) is not None
                if not late:
                    if event.pk - self.last_id <= 1000:
                        self.gaps.update(dict.fromkeys(range(self.last_id + 1, event.pk), now + GAP_SECONDS))
                    self.last_id = event.pk
                for subscriber in list(self.subscribers):
                    subscriber.offer(event, late)
            self.gaps = {pk: until for pk, until in self.gaps.items() if until > now}
            if len(batch) == 500:
                self.wake.set()


hub = StreamHub()


def _stream_identity(headers: dict[bytes, bytes]) -> tuple[int, set[int]] | int:
    """Who is asking: a session cookie or a bearer token. Returns (user id, community ids), or the
    status to refuse with: 401 for nobody, 403 for a token without the 'read' scope."""
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
            if token is not None and "read" not in token.scopes:
                return 403
            if token is not None:
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
            return 401
        return user.pk, community_ids_of(user.pk)
    finally:
        close_old_connections()


def _backlog(after_id: int, user_id: int, community_ids: set[int]) -> list:
    from pumasi.platform.selectors import events_after

    close_old_connections()
    try:
        return events_after(after_id=after_id, community_ids=community_ids, user_id=user_id, limit=BACKLOG_PAGE)
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
    if isinstance(identity, int):
        await _refuse(send, identity)
        return
    user_id, community_ids = identity
    await hub.ensure_started()
    query = parse_qs(scope.get("query_string", b"").decode())
    raw_last = headers.get(b"last-event-id", b"").decode() or (query.get("last_event_id") or [""])[0]
    subscriber = Subscriber(user_id, set(community_ids))
    # Subscribe before reading the backlog, so nothing falls between the two; duplicates are
    # dropped by id below.
    hub.subscribers.add(subscriber)
    tasks = [asyncio.ensure_future(_pump(subscriber, raw_last, send)), asyncio.ensure_future(_wait_disconnect(receive))]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        hub.subscribers.discard(subscriber)
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        # A failed send means the client went away; anything else is a bug worth a log line.
        if isinstance(result, Exception) and not isinstance(result, OSError | RuntimeError):
            logger.error("stream of user %s failed", user_id, exc_info=result)


async def _refuse(send, status: int) -> None:
    if status == 403:
        problem = {"title": "This token lacks the 'read' scope.", "code": "forbidden"}
    else:
        problem = {"title": "Authentication required.", "code": "unauthenticated"}
    body = json.dumps({"type": "about:blank", "status": status, **problem}).encode()
    headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="pumasi"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _pump(subscriber: Subscriber, raw_last: str, send) -> None:
    """Send the missed events (when resuming), then each new one, with a keep-alive comment when quiet."""

    async def emit(body: bytes) -> None:
        await send({"type": "http.response.body", "body": body, "more_body": True})

    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"text/event-stream; charset=utf-8"),
        (b"cache-control", b"no-cache"),
        (b"x-accel-buffering", b"no"),
    ]})
    await emit(b"retry: 2000\n: connected\n\n")
    last_sent = hub.last_id
    if raw_last.isdigit():
        last_sent = int(raw_last)
        while True:  # the backlog comes in pages; read until it is exhausted
            page = await asyncio.to_thread(_backlog, last_sent, subscriber.user_id, set(subscriber.community_ids))
            for event in page:
                await emit(_format(event))
                last_sent = event.pk
            if len(page) < BACKLOG_PAGE:
                break
    while True:
        try:
            event, late = await asyncio.wait_for(subscriber.queue.get(), timeout=KEEPALIVE_SECONDS)
        except TimeoutError:
            await emit(b": keepalive\n\n")
            continue
        if event.pk > last_sent or late:
            await emit(_format(event))
            last_sent = max(last_sent, event.pk)


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
    elif kind == "http" and scope["path"].endswith("/board/stream") and (slug := board_stream.match(scope["path"])):
        # A zone's public live board (pumasi/sharing/stream.py), on this hub's fan-out.
        await board_stream.serve_board_stream(scope, receive, send, hub, slug)
    elif kind == "lifespan":
        await _lifespan(receive, send)
    else:
        await wsgi_app(scope, _as_coroutine(receive), send)


def _as_coroutine(receive):
    """a2wsgi reads request bodies with run_coroutine_threadsafe(receive()), which accepts only
    true coroutines; granian's receive() returns a native awaitable, so without this wrapper
    every request with a body fails with a 500."""

    async def call():
        return await receive()

    return call
