"""`pumasi ledger verify|export|settle`: check the hash chains, export to Beancount, settle a period."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from pumasi.communities.models import Community, Membership
from pumasi.core.errors import DomainError


def _community(slug: str) -> Community:
    found = Community.objects.filter(slug=slug).first()
    if found is None:
        raise CommandError(f"No community with the address {slug!r}.")
    return found


class ProgressBar:
    """A plain-text progress bar on stderr: redraws in place on a terminal, one line per step elsewhere."""

    def __init__(self, stream, label: str, width: int = 30):
        self.stream, self.label, self.width = stream, label, width
        self.tty = hasattr(stream, "isatty") and stream.isatty()

    def __call__(self, done: int, total: int) -> None:
        fraction = 1.0 if total == 0 else done / total
        filled = int(self.width * fraction)
        bar = "#" * filled + "-" * (self.width - filled)
        text = f"{self.label} [{bar}] {done}/{total} ({fraction:.0%})"
        if self.tty:
            self.stream.write("\r" + text + ("\n" if done >= total else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


class Command(BaseCommand):
    help = "The cooperative ledger: verify the hash chains, export, settle a period."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        verify = sub.add_parser("verify", help="Recompute every community's hash chain; name the first broken transaction.")
        verify.add_argument("--community", help="only this community (its address)")
        export = sub.add_parser("export", help="Write a community's ledger in a plain-text accounting format.")
        export.add_argument("--format", choices=["beancount"], default="beancount")
        export.add_argument("--community", required=True)
        export.add_argument("--output", "-o", help="file to write (default: standard output)")
        settle = sub.add_parser("settle", help="Statements and payouts for a period (running it again adds nothing).")
        settle.add_argument("--community", required=True)
        settle.add_argument("--period", required=True, help="2026-03, 2026, or 2026-03-01..2026-03-16")
        settle.add_argument("--currency")
        settle.add_argument("--as", dest="as_email", help="the organiser or committee member acting (e-mail); "
                                                          "default: the community's first organiser")

    def handle(self, *args, **options):
        return getattr(self, f"_{options['action']}")(options)

    def _verify(self, options) -> None:
        from pumasi.ledger.selectors import verify_chain

        communities = [_community(options["community"])] if options.get("community") else list(
            Community.objects.filter(ledger_chain__isnull=False).order_by("slug"))
        broken = False
        for community in communities:
            problems = verify_chain(community)
            if not problems:
                self.stdout.write(f"{community.slug}: ok ({community.ledger_chain.seq if hasattr(community, 'ledger_chain') else 0} transactions)")
                continue
            broken = True
            for problem in problems:
                where = f"transaction #{problem.seq} (id {problem.transaction_id})" if problem.transaction_id else "balances"
                self.stdout.write(f"{community.slug}: BROKEN at {where}: {problem.reason}")
        if broken:
            raise CommandError("The ledger failed verification.", returncode=2)

    def _export(self, options) -> None:
        from pumasi.ledger.export import beancount_text

        text = beancount_text(_community(options["community"]))
        if options.get("output"):
            with open(options["output"], "w", encoding="utf-8") as handle:
                handle.write(text)
        else:
            self.stdout.write(text, ending="")

    def _settle(self, options) -> None:
        from django.contrib.auth import get_user_model

        from pumasi.ledger.services import parse_period, settle

        community = _community(options["community"])
        if options.get("as_email"):
            actor = get_user_model().objects.filter(email=options["as_email"]).first()
            if actor is None:
                raise CommandError(f"No person with the e-mail {options['as_email']!r}.")
        else:
            first = Membership.objects.filter(community=community, role="organiser").order_by("pk").select_related("user").first()
            if first is None:
                raise CommandError("The community has no organiser to act as; give --as.")
            actor = first.user
        try:
            start, end = parse_period(options["period"])
            settlement = settle(actor=actor, community=community, period_start=start, period_end=end,
                                currency=options.get("currency"), progress=ProgressBar(sys.stderr, "settling"))
        except DomainError as error:
            details = "; ".join(f"{k}: {' '.join(v)}" for k, v in error.field_errors.items())
            raise CommandError(f"{error.message} {details}".strip()) from error
        from pumasi.ledger.money import format_amount

        self.stdout.write(
            f"{community.slug} {settlement.period_start}..{settlement.period_end} {settlement.currency}: "
            f"{settlement.members_total} member(s), earned {format_amount(settlement.total_earned, settlement.currency)}, "
            f"paid {format_amount(settlement.total_paid, settlement.currency)} (settlement {settlement.pk})"
        )
