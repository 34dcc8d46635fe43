"""Scheduled jobs of the shop: sales and stock reports to designers.

One job per period kind runs every hour and sends whatever report of the last whole period is
still missing, so a missed run (the consumer was down at midnight) catches up by itself and
communities in any time zone get theirs soon after their local midnight.
"""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task


@db_periodic_task(crontab(minute="7"))
def daily_reports() -> int:
    from pumasi.market.services import send_reports

    return send_reports(period="daily")


@db_periodic_task(crontab(minute="17"))
def weekly_reports() -> int:
    from pumasi.market.services import send_reports

    return send_reports(period="weekly")


@db_periodic_task(crontab(minute="27"))
def monthly_reports() -> int:
    from pumasi.market.services import send_reports

    return send_reports(period="monthly")
