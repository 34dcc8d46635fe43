"""Serving benchmark: what the ASGI router of `pumasi run` costs, and what it buys.

In one run, on a throwaway SQLite database under var/bench/serving/:
- the server exactly as `pumasi run` starts it (granian, `pumasi.asgi:application`): a bare
  Django hello view, /healthz and an authenticated API read (Bearer token, GET /api/v1/me),
  each with its ratio to the bare view (target: authenticated read >= 0.5 of bare);
- the same bare view under granian's pure WSGI interface and under Django's own ASGI handler,
  with the router's ratio to each (the design record's alternatives);
- the cost of 200 idle /events/stream connections: server RSS before and after, and the hello
  throughput while they stay open.
Load comes from `wrk` on loopback: a 1 s warm-up, then 5 s per target.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKDIR = ROOT / "var" / "bench" / "serving"
DURATION = int(os.environ.get("PUMASI_BENCH_SECONDS", "5"))
CONNECTIONS = int(os.environ.get("PUMASI_BENCH_CONNECTIONS", "32"))
IDLE_STREAMS = 200
TARGET_AUTH_RATIO = 0.5


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env() -> dict[str, str]:
    # The bench owns its configuration: no inherited database, Redis or broker, so figures
    # are comparable between machines and the demo database is never touched.
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PUMASI_", "GRANIAN_"))}
    env.update(
        PUMASI_VAR_DIR=str(WORKDIR),
        PUMASI_DATABASE_URL=f"sqlite:///{WORKDIR / 'bench.sqlite3'}",
        PUMASI_DEBUG="0",
        PUMASI_API_RATE_LIMIT=str(10**9),  # the limiter still runs on every request; it just never trips
        PUMASI_SECRET_KEY="bench-only-not-secret",
        DJANGO_SETTINGS_MODULE="bench.settings",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")])),
    )
    return env


def _prepare() -> str:
    """A fresh database with one person in one community; returns their token's secret."""
    shutil.rmtree(WORKDIR, ignore_errors=True)
    WORKDIR.mkdir(parents=True)
    subprocess.run([sys.executable, "-m", "pumasi.cli", "migrate", "--noinput", "-v0"], cwd=ROOT, env=_env(),
                   check=True)
    done = subprocess.run([sys.executable, "-m", "bench.serving", "--seed"], cwd=ROOT, env=_env(), check=True,
                          capture_output=True, text=True)
    return done.stdout.strip().splitlines()[-1]


def _seed() -> None:
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from pumasi.communities.services import create_community
    from pumasi.platform.services import create_api_token

    person = get_user_model().objects.create_user(email="bench@example.com", password="bench-password-1")
    create_community(actor=person, name="Bench", slug="bench", kind="residents")
    _token, secret = create_api_token(user=person, name="bench", scopes=["read"])
    print(secret)


class Server:
    def __init__(self, label: str, argv: list[str], port: int):
        self.label = label
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(WORKDIR / f"{label}.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(argv, cwd=ROOT, env=_env(), stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)  # stop() ends the whole group, workers included
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{label} server exited; see {self.log.name}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{label} server did not start within 30 s")

    def rss_mb(self) -> float:
        """Resident memory of the server's whole process tree (granian's main and worker processes)."""
        total_kb, pending = 0, [self.process.pid]
        while pending:
            pid = pending.pop()
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                total_kb += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
                for task in Path(f"/proc/{pid}/task").iterdir():
                    pending.extend(int(child) for child in (task / "children").read_text().split())
            except (OSError, AttributeError):
                continue
        return total_kb / 1024

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            os.killpg(self.process.pid, signal.SIGKILL)  # whatever is left: granian workers orphaned by the parent
        except ProcessLookupError:
            pass
        self.process.wait()
        self.log.close()


def _router(port: int) -> Server:
    return Server("router", [sys.executable, "-m", "pumasi.cli", "run", "--port", str(port)], port)


def _granian(label: str, interface: str, target: str, port: int) -> Server:
    return Server(label, [sys.executable, "-m", "granian", "--interface", interface, "--host", "127.0.0.1",
                          "--port", str(port), "--workers", "1", "--no-access-log", target], port)


def _wrk(url: str, headers: dict[str, str] | None = None, seconds: int = DURATION) -> float:
    argv = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "10s"]
    for key, value in (headers or {}).items():
        argv += ["-H", f"{key}: {value}"]
    out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad:
        raise RuntimeError(f"{url}: {bad.group(1)} responses were not 2xx/3xx:\n{out}")
    errors = re.search(r"Socket errors: .*", out)
    if errors and re.search(r"(read|write|timeout) [1-9]", errors.group(0)):
        raise RuntimeError(f"{url}: {errors.group(0)}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def _measure(url: str, headers: dict[str, str] | None = None) -> float:
    _wrk(url, headers, seconds=1)  # warm-up: imports, connections, caches
    return _wrk(url, headers)


async def _open_streams(port: int, secret: str, count: int) -> list[asyncio.StreamWriter]:
    async def one() -> asyncio.StreamWriter:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"GET /events/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {secret}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=30)
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"stream refused: {head[:80]!r}")
        await asyncio.wait_for(reader.readuntil(b": connected\n\n"), timeout=30)
        return writer

    return list(await asyncio.gather(*(one() for _ in range(count))))


def _idle_streams(server: Server, secret: str, hello_url: str) -> dict[str, float]:
    loop = asyncio.new_event_loop()
    try:
        time.sleep(1)
        before = server.rss_mb()
        writers = loop.run_until_complete(_open_streams(server.port, secret, IDLE_STREAMS))
        time.sleep(1)
        after = server.rss_mb()
        hello = _measure(hello_url)
        for writer in writers:
            writer.close()
        loop.run_until_complete(asyncio.sleep(0.5))
        return {"before": before, "after": after, "hello": hello}
    finally:
        loop.close()


def _row(name: str, value: float, unit: str, ratio: float | None = None, of: str | None = None,
         note: str | None = None) -> dict:
    return {"name": name, "value": value, "unit": unit, "ratio": ratio, "of": of, "note": note}


def run() -> list[dict]:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: `apt-get install wrk` (Debian), or run `make bench` as root")
    secret = _prepare()
    auth = {"Authorization": f"Bearer {secret}"}
    figures: dict[str, float] = {}

    server = _router(_free_port())
    try:
        figures["hello"] = _measure(f"{server.url}/bench/hello")
        figures["healthz"] = _measure(f"{server.url}/healthz")
        figures["auth"] = _measure(f"{server.url}/api/v1/me", auth)
        idle = _idle_streams(server, secret, f"{server.url}/bench/hello")
    finally:
        server.stop()

    server = _granian("wsgi", "wsgi", "pumasi.wsgi:application", _free_port())
    try:
        figures["wsgi_hello"] = _measure(f"{server.url}/bench/hello")
    finally:
        server.stop()

    server = _granian("django-asgi", "asgi", "bench.django_asgi:application", _free_port())
    try:
        figures["django_asgi_hello"] = _measure(f"{server.url}/bench/hello")
    finally:
        server.stop()

    hello = figures["hello"]
    auth_ratio = figures["auth"] / hello
    return [
        _row("router: bare Django hello view", hello, "req/s", 1.0, "bare"),
        _row("router: /healthz", figures["healthz"], "req/s", figures["healthz"] / hello, "bare"),
        _row("router: GET /api/v1/me (Bearer token)", figures["auth"], "req/s", auth_ratio, "bare",
             f"target >= {TARGET_AUTH_RATIO}: {'met' if auth_ratio >= TARGET_AUTH_RATIO else 'NOT MET'}"),
        _row("granian wsgi: bare hello", figures["wsgi_hello"], "req/s", hello / figures["wsgi_hello"],
             "router/wsgi", "pure WSGI: an open stream would pin a thread"),
        _row("django asgi handler: bare hello", figures["django_asgi_hello"], "req/s",
             hello / figures["django_asgi_hello"], "router/django-asgi"),
        _row("server RSS, no streams", idle["before"], "MB"),
        _row(f"server RSS, {IDLE_STREAMS} idle streams", idle["after"], "MB", idle["after"] / idle["before"],
             "no streams", f"{(idle['after'] - idle['before']) * 1024 / IDLE_STREAMS:.0f} kB per stream"),
        _row(f"router: bare hello, {IDLE_STREAMS} idle streams open", idle["hello"], "req/s",
             idle["hello"] / hello, "bare"),
    ]


if __name__ == "__main__" and sys.argv[1:] == ["--seed"]:
    _seed()
