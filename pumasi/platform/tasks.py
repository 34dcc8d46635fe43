"""Background jobs of the platform: event delivery to job-side handlers, Web Push of notifications,
and pruning old events."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

logger = logging.getLogger("pumasi.jobs")

# Job-side handlers: name -> list of callables taking the Event. Later issues (webhooks,
# e-mail) register here; each must be safe to run twice because a job can be retried.
JOB_HANDLERS: dict[str, list] = {}
PRUNE_BATCH = 5000


def on_event_job(name: str):
    def register(handler):
        JOB_HANDLERS.setdefault(name, [])
        if handler not in JOB_HANDLERS[name]:
            JOB_HANDLERS[name].append(handler)
        return handler

    return register


def deliver_events(event_ids: list[int]) -> None:
    """Queue one job for a transaction's events, only when some job-side handler wants events."""
    if JOB_HANDLERS and event_ids:
        deliver_events_job(event_ids)


@db_task(retries=3, retry_delay=10)
def deliver_events_job(event_ids: list[int]) -> None:
    """Run the job-side handlers over the events in order. A failure does not stop the others, and
    the retry runs them all again, which is why every handler must be idempotent."""
    from pumasi.platform.models import Event

    failed = None
    for event in Event.objects.filter(pk__in=event_ids).select_related("community", "recipient").order_by("pk"):
        for handler in [*JOB_HANDLERS.get(event.name, ()), *JOB_HANDLERS.get("*", ())]:
            try:
                handler(event)
            except Exception as exc:  # the other events still get their handlers; the job is retried
                logger.exception("job handler %r failed for %s", handler, event)
                failed = exc
    if failed is not None:
        raise failed


@db_task()
def send_push_job(notification_id: int) -> None:
    """Push one notification to its recipient's devices. Not retried by Huey: each device is tried
    once (a PushDelivery row claims it), and the notification stays in the app regardless."""
    from pumasi.platform.webpush import push_notification

    push_notification(notification_id)


@db_periodic_task(crontab(hour="3", minute="17"))
def prune_old_events() -> int:
    """Delete domain events past the retention period, in batches so no lock is held for long.

    Events are the transport (live streams resume from them, jobs read them); what happened
    stays in the audit log.
    """
    from pumasi.platform.models import Event

    cutoff = timezone.now() - timedelta(days=settings.PUMASI_EVENT_RETENTION_DAYS)
    deleted = 0
    while True:
        ids = list(Event.objects.filter(created_at__lt=cutoff).order_by("pk").values_list("pk", flat=True)[:PRUNE_BATCH])
        if not ids:
            break
        deleted += Event.objects.filter(pk__in=ids).delete()[0]
    if deleted:
        logger.info("pruned %s events older than %s", deleted, cutoff)
    return deleted


@db_periodic_task(crontab(minute="41"))
def prune_idempotency_keys() -> int:
    """Idempotency keys live 24 hours; hourly pruning keeps the table at about one day of POSTs."""
    from pumasi.platform.idempotency import prune

    deleted = prune()
    if deleted:
        logger.info("pruned %s expired idempotency keys", deleted)
    return deleted
