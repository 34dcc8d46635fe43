"""Background jobs: a real `pumasi worker` runs the event-delivery job a service queued after
commit (SqliteHuey in a temp dir on the SQLite leg, RedisHuey on the PostgreSQL leg), and the
periodic prune job is registered and does its work."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import huey
import pytest
from django.utils import timezone
from huey.contrib.djhuey import HUEY

from conftest import ROOT, database_url_for_subprocess
from pumasi.platform.models import Event
from pumasi.platform.tasks import prune_old_events
from pumasi.platform.tests.helpers import bearer, on_postgres, required_redis_url, token_for


def _wait_for_line(path: Path, needle: str, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists():
            for line in path.read_text().splitlines():
                if line.startswith(needle):
                    return line
        time.sleep(0.1)
    return ""


def test_worker_runs_the_job_a_service_queued_after_commit(pumasi_server, community, tmp_path):
    probe = tmp_path / "probe.log"
    env = {
        "DJANGO_SETTINGS_MODULE": "pumasi.platform.tests.probe_settings",
        "PUMASI_JOBS_IMMEDIATE": "0",
        "PUMASI_VAR_DIR": str(tmp_path),  # SqliteHuey keeps its queue at <var>/jobs.sqlite3
        "PUMASI_PROBE_FILE": str(probe),
        "PUMASI_REDIS_URL": required_redis_url(db=13) if on_postgres() else "",
        "PUMASI_SECRET_KEY": "job-test",
    }
    server = pumasi_server(env)
    secret = token_for(community.organiser)
    response = httpx.post(f"{server.url}/api/v1/communities/{community.slug}/invitations", json={},
                          headers=bearer(secret), timeout=10)
    assert response.status_code == 201, response.text
    event = Event.objects.get(name="communities.invitation_created", community=community)
    queue = (huey.RedisHuey("pumasi", url=env["PUMASI_REDIS_URL"]) if on_postgres()
             else huey.SqliteHuey("pumasi", filename=str(tmp_path / "jobs.sqlite3")))
    assert queue.pending_count() >= 1, "the service's commit queued no job in the configured storage"
    assert not probe.exists(), "the job ran before any worker was started"

    worker = subprocess.Popen(
        [sys.executable, "-m", "pumasi.cli", "worker"], cwd=ROOT,
        env={**os.environ, "PUMASI_DATABASE_URL": database_url_for_subprocess(), "PUMASI_DEBUG": "0", **env},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        line = _wait_for_line(probe, f"{event.pk} communities.invitation_created", seconds=20)
    finally:
        worker.terminate()
        output = worker.communicate(timeout=15)[0]
    assert line, f"the worker did not run the job; its output:\n{output}"
    assert f"pid={worker.pid}" in line  # run by the worker, not inline by the server
    assert "pumasi.platform.tasks.prune_old_events" in output  # the worker knows the periodic job


def test_prune_is_a_daily_periodic_job_and_keeps_recent_events(db, community):
    due = {task.name for task in HUEY.read_periodic(datetime(2025, 5, 1, 3, 17))}
    assert "prune_old_events" in due
    assert "prune_old_events" not in {task.name for task in HUEY.read_periodic(datetime(2025, 5, 1, 4, 17))}

    old = Event.objects.create(name="test.old", community=community)
    recent = Event.objects.create(name="test.recent", community=community)
    Event.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=181))
    assert prune_old_events.call_local() == 1
    assert list(Event.objects.filter(pk__in=[old.pk, recent.pk]).values_list("pk", flat=True)) == [recent.pk]


@pytest.mark.parametrize("retention_days, left", [(180, 1), (10, 0)])
def test_prune_follows_the_retention_setting(db, community, settings, retention_days, left):
    settings.PUMASI_EVENT_RETENTION_DAYS = retention_days
    event = Event.objects.create(name="test.aged", community=community)
    Event.objects.filter(pk=event.pk).update(created_at=timezone.now() - timedelta(days=30))
    prune_old_events.call_local()
    assert Event.objects.filter(pk=event.pk).count() == left
