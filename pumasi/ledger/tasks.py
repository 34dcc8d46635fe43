"""Background jobs of the ledger: escrow release after the timeout, settlement runs from the UI."""

from __future__ import annotations

import logging

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

logger = logging.getLogger("pumasi.ledger")


@db_periodic_task(crontab(minute="*/10"))
def release_due_escrows() -> int:
    """Release to the seller every held escrow whose timeout passed with no dispute (idempotent)."""
    from django.utils import timezone

    from pumasi.core.errors import DomainError
    from pumasi.ledger.models import Escrow
    from pumasi.ledger.services import release_after_timeout

    released = 0
    for escrow in Escrow.objects.filter(status="held", disputed_at__isnull=True, timeout_at__lte=timezone.now()):
        try:
            release_after_timeout(actor=None, escrow=escrow)
            released += 1
        except DomainError as error:  # decided meanwhile by two parties, or disputed: nothing to do
            logger.info("escrow %s not released: %s", escrow.pk, error.message)
    return released


@db_task(retries=2, retry_delay=30)
def settle_job(community_id: int, actor_id: int, start: str, end: str, currency: str) -> int:
    """Settle from the UI: progress reaches the page as `ledger.settlement_progress` events."""
    from datetime import date

    from django.contrib.auth import get_user_model

    from pumasi.communities.models import Community
    from pumasi.ledger.services import settle

    community = Community.objects.get(pk=community_id)
    actor = get_user_model().objects.get(pk=actor_id)
    return settle(actor=actor, community=community, period_start=date.fromisoformat(start),
                  period_end=date.fromisoformat(end), currency=currency).pk
