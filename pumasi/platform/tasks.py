"""Background jobs of the platform: event delivery to job-side handlers, and pruning old events."""

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


def deliver_event(event_id: int) -> None:
    """Queue the job only when some job-side handler wants events; keeps the queue quiet otherwise."""
    if JOB_HANDLERS:
        deliver_event_job(event_id)


@db_task(retries=3, retry_delay=10)
def deliver_event_job(event_id: int) -> None:
    from pumasi.platform.models import Event

    event = Event.objects.filter(pk=event_id).first()
    if event is None:
        return
    for handler in [*JOB_HANDLERS.get(event.name, ()), *JOB_HANDLERS.get("*", ())]:
        handler(event)


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
