"""Open-platform benchmark, in one run:
- notification fan-out: one event in a community followed by 40,000 people, from publishing it to
  40,000 in-app notifications and their live-count events committed (the job-side handler, run
  inline as PUMASI_JOBS_IMMEDIATE does); notifications/s;
- the daily digest for those 40,000 members: wall time of the one digest job, mails sent, and how
  many jobs ran (target: one job per period, not one per member);
- API token auth overhead: a real `pumasi run` (bench/serving's server start) serving the bare
  Django hello view, GET /api/v1/me and GET /api/v1/notifications/unread-count with a Bearer
  token, each with its ratio to the bare view of the same run and the extra ms per request.

`python -m bench.platform` runs it alone. The fan-out and digest are measured in a child process
with its own throwaway SQLite database under var/bench/ (never the demo database); mail goes to
Django's in-memory backend, so the digest figure is building and rendering, not SMTP.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKDIR = ROOT / "var" / "bench"
FOLLOWERS = int(os.environ.get("PUMASI_BENCH_FOLLOWERS", "40000"))


def run() -> list[dict]:
    from bench import serving

    WORKDIR.mkdir(parents=True, exist_ok=True)
    db = WORKDIR / f"platform-{os.getpid()}.sqlite3"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUMASI_")}
    env.update(PUMASI_DATABASE_URL=f"sqlite:///{db}", PUMASI_VAR_DIR=str(WORKDIR / "var"),
               DJANGO_SETTINGS_MODULE="pumasi.settings", PUMASI_JOBS_IMMEDIATE="1", PUMASI_LOG_LEVEL="ERROR",
               PUMASI_EMAIL_URL="memory://", PUMASI_BENCH_FOLLOWERS=str(FOLLOWERS))
    try:
        done = subprocess.run([sys.executable, "-m", "bench.platform", "--measure"], cwd=ROOT, env=env,
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"the platform benchmark failed:\n{done.stderr[-4000:]}")
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    f = json.loads(done.stdout.strip().splitlines()[-1])
    auth = _auth_overhead(serving)
    n = f"{FOLLOWERS:,}"
    return [
        {"name": f"fan-out: event → {n} in-app notifications", "value": f["fanout_s"], "unit": "s",
         "note": f"{f['notifications']:,} notifications + {f['live_events']:,} live events committed; "
                 f"{f['notifications'] / f['fanout_s']:,.0f} notifications/s"},
        {"name": f"fan-out: publish → job queued ({n} followers)", "value": f["enqueue_ms"], "unit": "ms",
         "note": "publish_event + commit + dispatch, handler excluded"},
        {"name": f"daily digest for {n} members", "value": f["digest_s"], "unit": "s",
         "note": f"{f['mails']:,} mails built and sent; {f['mails'] / f['digest_s']:,.0f} mails/s"},
        {"name": "daily digest: jobs run", "value": f["digest_jobs"], "unit": "jobs",
         "note": "target: 1 per period (not one per member): " + ("met" if f["digest_jobs"] == 1 else "NOT MET")},
        {"name": "router: bare Django hello view", "value": auth["hello"], "unit": "req/s", "ratio": 1.0, "of": "bare"},
        {"name": "GET /api/v1/me (Bearer token)", "value": auth["me"], "unit": "req/s",
         "ratio": auth["me"] / auth["hello"], "of": "bare",
         "note": f"+{_extra_ms(auth['me'], auth['hello']):.2f} ms server time per request over the bare view"},
        {"name": "GET /api/v1/notifications/unread-count (Bearer)", "value": auth["unread"], "unit": "req/s",
         "ratio": auth["unread"] / auth["hello"], "of": "bare",
         "note": f"+{_extra_ms(auth['unread'], auth['hello']):.2f} ms server time per request over the bare view"},
    ]


def _extra_ms(rate: float, bare: float) -> float:
    """Server time per request beyond the bare view's, from the two throughputs of one run."""
    return (1 / rate - 1 / bare) * 1000


def _auth_overhead(serving) -> dict[str, float]:
    secret = serving._prepare()
    headers = {"Authorization": f"Bearer {secret}"}
    server = serving._router(serving._free_port())
    try:
        return {
            "hello": serving._measure(f"{server.url}/bench/hello"),
            "me": serving._measure(f"{server.url}/api/v1/me", headers),
            "unread": serving._measure(f"{server.url}/api/v1/notifications/unread-count", headers),
        }
    finally:
        server.stop()


def _measure() -> dict:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.contenttypes.models import ContentType
    from django.core import mail
    from django.core.management import call_command
    from django.db import transaction
    from huey.contrib.djhuey import HUEY
    from huey.signals import SIGNAL_EXECUTING

    call_command("migrate", verbosity=0)
    from pumasi.communities.models import Community, Membership
    from pumasi.communities.services import create_community
    from pumasi.core.events import publish_event
    from pumasi.platform import notifications, tasks
    from pumasi.platform.models import Event, Follow, Notification

    user_model = get_user_model()
    organiser = user_model.objects.create_user(email="organiser@bench.example", password="bench-password-1")
    community = create_community(actor=organiser, name="Bench", slug="bench", kind="residents")
    user_model.objects.bulk_create(
        [user_model(email=f"m{i}@bench.example", display_name=f"Member {i}", password="!", language="ko")
         for i in range(FOLLOWERS)], batch_size=2000)
    ids = list(user_model.objects.filter(email__endswith="@bench.example").exclude(pk=organiser.pk)
               .values_list("pk", flat=True))
    Membership.objects.bulk_create([Membership(community=community, user_id=i, role="member") for i in ids],
                                   batch_size=2000)
    community_type = ContentType.objects.get_for_model(Community)
    Follow.objects.bulk_create([Follow(follower_id=i, content_type=community_type, object_id=str(community.pk))
                                for i in ids], batch_size=2000)

    # Publish → job queued: with the job-side handlers set aside, only publishing and dispatch count.
    saved = dict(tasks.JOB_HANDLERS)
    tasks.JOB_HANDLERS.clear()
    tasks.JOB_HANDLERS["bench.noop"] = [lambda event: None]
    started = time.perf_counter()
    with transaction.atomic():
        publish_event(name="bench.warmup", community=community, payload={})
    enqueue_ms = (time.perf_counter() - started) * 1000
    tasks.JOB_HANDLERS.clear()
    tasks.JOB_HANDLERS.update(saved)

    before_events = Event.objects.count()
    started = time.perf_counter()
    with transaction.atomic():
        publish_event(name="bench.announcement", community=community, payload={"subject_type": "communities.community",
                                                                                "subject_id": community.pk})
    fanout_s = time.perf_counter() - started
    notified = Notification.objects.filter(community=community, kind="activity").count()
    live = Event.objects.filter(name="notifications.created").count()
    assert notified == FOLLOWERS, f"{notified} notifications for {FOLLOWERS} followers"
    assert Event.objects.count() - before_events >= FOLLOWERS

    jobs: list[str] = []
    HUEY.signal(SIGNAL_EXECUTING)(lambda signal, task, *args, **kwargs: jobs.append(task.name))
    mail.outbox = []
    started = time.perf_counter()
    notifications.daily_digest_job()
    digest_s = time.perf_counter() - started
    mails = len(mail.outbox)
    assert mails == FOLLOWERS, f"{mails} digest mails for {FOLLOWERS} members"
    return {"fanout_s": fanout_s, "notifications": notified, "live_events": live, "enqueue_ms": enqueue_ms,
            "digest_s": digest_s, "mails": mails, "digest_jobs": len(jobs)}


if __name__ == "__main__" and sys.argv[1:] == ["--measure"]:
    print(json.dumps(_measure()))
elif __name__ == "__main__":
    for row in run():
        print(row)
