"""Fixtures shared by every app's tests: people, communities, API clients, a live pumasi server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from django.test import Client

from pumasi.tests.factories import CommunityFactory, MembershipFactory, UserFactory

ROOT = Path(__file__).resolve().parent


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def make_user(db):
    return UserFactory


@pytest.fixture
def community(db):
    """A community with one organiser (community.organiser)."""
    organiser = UserFactory(display_name="Organiser")
    community = CommunityFactory()
    MembershipFactory(community=community, user=organiser, role="organiser")
    community.organiser = organiser
    return community


@pytest.fixture
def member_of(db):
    """member_of(community, role="member") -> a new person with that role there."""

    def make(community, role="member", **fields):
        person = UserFactory(**fields)
        MembershipFactory(community=community, user=person, role=role)
        return person

    return make


@pytest.fixture
def api_client_for(db):
    """api_client_for(user, scopes=[...]) -> a Client sending that person's bearer token."""
    from pumasi.platform.services import TOKEN_SCOPES, create_api_token

    def make(person, scopes=None):
        _token, secret = create_api_token(user=person, name="test", scopes=list(scopes or TOKEN_SCOPES))
        return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")

    return make


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url_for_subprocess() -> str:
    """The URL of the test database this test run created, for servers started as subprocesses."""
    from django.db import connection

    settings_dict = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings_dict['NAME']}"
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    user = settings_dict.get("USER") or "postgres"
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{password}@" if password else f"{user}@"
    return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"


def stop_process_group(process: subprocess.Popen) -> None:
    """SIGTERM the process's whole group, SIGKILL what is left after 10 s."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


class PumasiServer:
    """A real `pumasi run` (granian + the ASGI router) on a free port, against the test database."""

    def __init__(self, extra_env: dict[str, str] | None = None):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PUMASI_DATABASE_URL": database_url_for_subprocess(), "PUMASI_JOBS_IMMEDIATE": "1",
               "PUMASI_DEBUG": "0", "DJANGO_SETTINGS_MODULE": "pumasi.settings"}
        env.update(extra_env or {})
        # A file, not a pipe: nobody reads the log while the test runs, and a full pipe
        # would block the server.
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pumasi.cli", "run", "--port", str(self.port)],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
            # Its own process group, so stop() ends granian's worker processes too, not just the parent.
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pumasi run exited: {self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.2)
        else:
            self.stop()
            raise RuntimeError("pumasi run did not start within 30 s")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self) -> None:
        stop_process_group(self.process)
        self.log.close()


@pytest.fixture
def pumasi_server(transactional_db):
    """start(extra_env=None) -> a running PumasiServer; all are stopped after the test."""
    servers: list[PumasiServer] = []

    def start(extra_env=None) -> PumasiServer:
        server = PumasiServer(extra_env)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
