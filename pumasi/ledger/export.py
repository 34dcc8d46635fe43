"""Exports of a community's ledger to plain-text accounting tools (Beancount)."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import timedelta
from zoneinfo import ZoneInfo

from pumasi.ledger.models import Account, AccountBalance, Posting, Transaction
from pumasi.ledger.money import major_str

ROOTS = {"asset": "Assets", "liability": "Liabilities", "equity": "Equity", "income": "Income", "expense": "Expenses"}


def beancount_account(account: Account) -> str:
    """pumasi code "member:12" of a liability → "Liabilities:Member:12" (each part a valid component)."""
    parts = []
    for part in account.code.split(":"):
        cleaned = re.sub(r"[^A-Za-z0-9-]", "-", part).strip("-") or "X"
        parts.append(cleaned[0].upper() + cleaned[1:])
    return ":".join([ROOTS[account.type], *parts])


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def beancount_text(community) -> str:
    zone = ZoneInfo(community.time_zone)
    accounts = list(Account.objects.filter(community=community).order_by("pk"))
    names = {a.pk: beancount_account(a) for a in accounts}
    first = Transaction.objects.filter(community=community).order_by("seq").values_list("created_at", flat=True).first()
    opened = (first.astimezone(zone).date() if first else community.created_at.astimezone(zone).date())
    lines = [
        f";; pumasi ledger of {community.slug} ({community.name})",
        f'option "title" {_quote(community.name)}',
        f'option "operating_currency" "{community.currency}"',
        "",
    ]
    by_name: dict[str, set[str]] = defaultdict(set)
    for account in accounts:
        by_name[names[account.pk]].add(account.currency)
    for name in sorted(by_name):
        lines.append(f"{opened.isoformat()} open {name} {','.join(sorted(by_name[name]))}")
    lines.append("")
    last_day = opened
    postings: dict[int, list[tuple[int, str, int]]] = defaultdict(list)
    txs = list(Transaction.objects.filter(community=community).order_by("seq"))
    for chunk_start in range(0, len(txs), 5000):
        ids = [t.pk for t in txs[chunk_start:chunk_start + 5000]]
        for tx_id, account_id, currency, amount in Posting.objects.filter(transaction_id__in=ids).order_by("pk").values_list(
                "transaction_id", "account_id", "currency", "amount"):
            postings[tx_id].append((account_id, currency, amount))
    for tx in txs:
        day = tx.created_at.astimezone(zone).date()
        last_day = max(last_day, day)
        lines.append(f'{day.isoformat()} * {_quote(tx.memo or tx.kind)}')
        lines.append(f'  pumasi-seq: {tx.seq}')
        lines.append(f'  pumasi-kind: {_quote(tx.kind)}')
        lines.append(f'  pumasi-hash: {_quote(tx.hash)}')
        for account_id, currency, amount in postings[tx.pk]:
            lines.append(f"  {names[account_id]}  {major_str(amount, currency)} {currency}")
        lines.append("")
    # Balance assertions let Beancount itself check that its sums equal pumasi's kept balances.
    check_day = last_day + timedelta(days=1)
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for kept in AccountBalance.objects.filter(account__community=community).select_related("account"):
        totals[(names[kept.account_id], kept.account.currency)] += kept.balance
    for (name, currency), balance in sorted(totals.items()):
        lines.append(f"{check_day.isoformat()} balance {name}  {major_str(balance, currency)} {currency}")
    lines.append("")
    return "\n".join(lines)
