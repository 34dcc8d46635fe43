"""Background jobs of the platform: event delivery to job-side handlers."""

from __future__ import annotations

import logging

from huey.contrib.djhuey import db_task

logger = logging.getLogger("pumasi.jobs")

# Job-side handlers: name -> list of callables taking the Event. Later issues (webhooks,
# e-mail) register here; each must be safe to run twice because a job can be retried.
JOB_HANDLERS: dict[str, list] = {}


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
