"""Helpers for the platform's live-server tests: an SSE reader and the Redis each leg needs."""

from __future__ import annotations

import json
import os

import httpx
import pytest
from django.db import connection

from pumasi.platform.services import create_api_token


def token_for(person, scopes=("read", "communities:write")) -> str:
    return create_api_token(user=person, name="test", scopes=list(scopes))[1]


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


class EventStream:
    """An open /events/stream, read with httpx; `next_event()` returns the next event as a dict."""

    def __init__(self, base_url: str, secret: str | None, last_event_id: int | None = None, read_timeout=5.0):
        headers = {"Accept": "text/event-stream", **(bearer(secret) if secret else {})}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.client = httpx.Client(timeout=httpx.Timeout(10.0, read=read_timeout))
        self._context = self.client.stream("GET", f"{base_url}/events/stream", headers=headers)
        self.response = self._context.__enter__()
        self.lines = self.response.iter_lines()
        if self.response.status_code == 200:
            for line in self.lines:  # the server says it is listening before anything else
                if line == ": connected":
                    break

    def next_event(self) -> dict:
        fields: dict[str, str] = {}
        for line in self.lines:
            if line == "":
                if "event" in fields:
                    return {"id": int(fields["id"]), "name": fields["event"], **json.loads(fields["data"])}
                fields = {}
            elif not line.startswith(":"):
                key, _, value = line.partition(":")
                fields[key] = value.removeprefix(" ")
        raise AssertionError("the stream ended")

    def close(self) -> None:
        self._context.__exit__(None, None, None)
        self.client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def on_postgres() -> bool:
    return connection.vendor == "postgresql"


def required_redis_url(db: int) -> str:
    """The Redis the PostgreSQL leg runs with (several processes: PostgreSQL + Redis). Missing
    Redis there is a failure, never a skip: start it with `redis-server`, or point
    PUMASI_TEST_REDIS_URL at one. A database of its own keeps these queues apart from a dev server's."""
    import redis

    url = os.environ.get("PUMASI_TEST_REDIS_URL") or f"redis://127.0.0.1:6379/{db}"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {url} is required on the PostgreSQL leg (CI={os.environ.get('CI', '')}): {exc}")
    return url
