"""Background jobs of the sharing capability: the minute sweep (holds, no-shows, overstays,
silent sensors, permit renewals)."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from pumasi.sharing import services


@db_periodic_task(crontab(minute="*"))
def sweep_job() -> dict:
    return services.sweep()
