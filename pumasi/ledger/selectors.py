"""Reads of the ledger: accounts with balances, transactions, rules, statements, escrows, pools,
the transparency figures, and the chain verification."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from django.db.models import Q, QuerySet, Sum
from django.utils.translation import gettext as _

from pumasi.core.errors import NotFound
from pumasi.ledger.models import (
    Account,
    AccountBalance,
    ChainHead,
    Escrow,
    LedgerSettings,
    Pool,
    PoolClaim,
    Posting,
    Settlement,
    SplitRule,
    Statement,
    Transaction,
)
from pumasi.ledger.services import GENESIS, chain_hash, period_bounds


def ledger_settings(community) -> LedgerSettings:
    """The saved settings, or the defaults (unsaved) when the organiser never changed them."""
    return LedgerSettings.objects.filter(community=community).first() or LedgerSettings(community=community)


def accounts(community, currency: str | None = None) -> QuerySet[Account]:
    rows = Account.objects.filter(community=community).select_related("kept_balance", "owner_user")
    if currency:
        rows = rows.filter(currency=currency)
    return rows.order_by("type", "code", "currency")


def account(community, account_id: int) -> Account:
    found = Account.objects.filter(community=community, pk=account_id).select_related("kept_balance", "owner_user").first()
    if found is None:
        raise NotFound(_("No such account."))
    return found


def balance_of(account: Account) -> int:
    """Constant time: the kept balance row, never a sum over postings."""
    return AccountBalance.objects.values_list("balance", flat=True).get(account_id=account.pk)


def transactions(community, account_id: int | None = None) -> QuerySet[Transaction]:
    rows = Transaction.objects.filter(community=community)
    if account_id:
        rows = rows.filter(postings__account_id=account_id).distinct()
    return rows.select_related("actor", "reverses").prefetch_related("postings__account")


def transaction(community, transaction_id: int) -> Transaction:
    found = (Transaction.objects.filter(community=community, pk=transaction_id)
             .select_related("actor", "reverses", "community").prefetch_related("postings__account").first())
    if found is None:
        raise NotFound(_("No such transaction."))
    return found


def split_rules(community, include_retired: bool = True) -> QuerySet[SplitRule]:
    rows = SplitRule.objects.filter(community=community)
    if not include_retired:
        rows = rows.filter(retired_at__isnull=True)
    return rows.prefetch_related("versions__shares__account", "versions__remainder_account").order_by("name")


def split_rule(community, rule_id: int) -> SplitRule:
    found = split_rules(community).filter(pk=rule_id).first()
    if found is None:
        raise NotFound(_("No such split rule."))
    return found


def settlements(community) -> QuerySet[Settlement]:
    return Settlement.objects.filter(community=community).order_by("-period_start", "-pk")


def settlement(community, settlement_id: int) -> Settlement:
    found = Settlement.objects.filter(community=community, pk=settlement_id).first()
    if found is None:
        raise NotFound(_("No such settlement."))
    return found


def statements(settlement_obj: Settlement, user=None, see_all: bool = True) -> QuerySet[Statement]:
    rows = settlement_obj.statements.select_related("member", "account", "payout").prefetch_related("lines")
    if not see_all:
        rows = rows.filter(member=user)
    return rows.order_by("member__display_name", "member__email", "pk")


def escrows(community, user=None, see_all: bool = False) -> QuerySet[Escrow]:
    rows = Escrow.objects.filter(community=community).select_related("buyer", "seller", "moderator")
    if not see_all:
        rows = rows.filter(Q(buyer=user) | Q(seller=user) | Q(moderator=user))
    return rows.order_by("-pk")


def escrow(community, escrow_id: int) -> Escrow:
    found = Escrow.objects.filter(community=community, pk=escrow_id).select_related(
        "community", "account", "buyer", "seller", "moderator", "funding", "resolution").first()
    if found is None:
        raise NotFound(_("No such escrow."))
    return found


def pools(community) -> QuerySet[Pool]:
    return Pool.objects.filter(community=community).select_related("account__kept_balance").order_by("name")


def pool(community, pool_id: int) -> Pool:
    found = pools(community).filter(pk=pool_id).first()
    if found is None:
        raise NotFound(_("No such pool."))
    return found


def claim(pool_obj: Pool, claim_id: int) -> PoolClaim:
    found = PoolClaim.objects.filter(pool=pool_obj, pk=claim_id).select_related("pool__community", "claimant").first()
    if found is None:
        raise NotFound(_("No such claim."))
    return found


# --- transparency ------------------------------------------------------------------------------

@dataclass
class Transparency:
    start: date
    end: date
    currency: str
    income: int = 0
    to_owner: dict[str, int] = field(default_factory=dict)
    platform_percent: float | None = None
    paid_out: int = 0
    my_earnings: int | None = None
    members: list[tuple[str, int]] = field(default_factory=list)


def transparency(community, start: date, end: date, viewer=None, currency: str | None = None,
                 with_members: bool = True) -> Transparency:
    """Where the money went in [start, end): income split by rules → members, community, platform, pools.

    Reversals of split income count against it, so a corrected entry nets out.
    """
    currency = currency or community.currency
    low, high = period_bounds(community, start, end)
    in_period = Posting.objects.filter(
        account__community=community, currency=currency,
        transaction__created_at__gte=low, transaction__created_at__lt=high,
    )
    split_ids = Q(transaction__kind="split") | Q(transaction__reverses__kind="split")
    split_postings = in_period.filter(split_ids)
    result = Transparency(start=start, end=end, currency=currency)
    result.income = split_postings.filter(amount__gt=0, account__type="asset").aggregate(s=Sum("amount"))["s"] or 0
    result.income -= -(split_postings.filter(amount__lt=0, account__type="asset").aggregate(s=Sum("amount"))["s"] or 0)
    owners: dict[str, int] = defaultdict(int)
    for owner_kind, total in (split_postings.exclude(account__type="asset").values("account__owner_kind")
                              .annotate(total=Sum("amount")).values_list("account__owner_kind", "total")):
        owners[owner_kind] += -total
    result.to_owner = dict(sorted(owners.items()))
    if result.income:
        result.platform_percent = round(100 * owners.get("platform", 0) / result.income, 2)
    result.paid_out = in_period.filter(transaction__kind="payout", account__owner_kind="member").aggregate(
        s=Sum("amount"))["s"] or 0
    if viewer is not None and getattr(viewer, "is_authenticated", False):
        mine = split_postings.filter(account__owner_kind="member", account__owner_user=viewer).aggregate(s=Sum("amount"))["s"]
        result.my_earnings = -(mine or 0)
    if with_members:
        rows = (split_postings.filter(account__owner_kind="member").values("account__name")
                .annotate(total=Sum("amount")).order_by("total", "account__name"))
        result.members = [(row["account__name"], -row["total"]) for row in rows]
    return result


# --- verification ------------------------------------------------------------------------------

@dataclass
class ChainProblem:
    community_slug: str
    seq: int | None
    transaction_id: int | None
    reason: str


def verify_chain(community, chunk: int = 2000) -> list[ChainProblem]:
    """Recompute the community's chain from the first transaction; the first break is reported, plus
    any kept balance that differs from the sum of its postings."""
    problems: list[ChainProblem] = []
    prev_hash = GENESIS
    expected_seq = 1
    last_id = 0
    broken = False
    while not broken:
        rows = list(Transaction.objects.filter(community=community, seq__gte=expected_seq).order_by("seq")[:chunk])
        if not rows:
            break
        postings: dict[int, list[tuple[int, str, int]]] = defaultdict(list)
        for tx_id, account_id, currency, amount in Posting.objects.filter(
                transaction_id__in=[r.pk for r in rows]).values_list("transaction_id", "account_id", "currency", "amount"):
            postings[tx_id].append((account_id, currency, amount))
        for row in rows:
            reason = None
            if row.seq != expected_seq:
                reason = _("transaction #%(seq)d is missing") % {"seq": expected_seq}
            elif row.prev_hash != prev_hash:
                reason = _("its link to the previous transaction is broken")
            else:
                sums: dict[str, int] = defaultdict(int)
                for _account, currency, amount in postings[row.pk]:
                    sums[currency] += amount
                if len(postings[row.pk]) < 2 or any(sums.values()):
                    reason = _("its postings do not balance")
                elif chain_hash(
                    community_id=community.pk, seq=row.seq, prev_hash=row.prev_hash,
                    idempotency_key=row.idempotency_key, kind=row.kind, memo=row.memo, reference=row.reference,
                    actor_id=row.actor_id, reverses_id=row.reverses_id, created_at=row.created_at,
                    postings=postings[row.pk],
                ) != row.hash:
                    reason = _("its content does not match its hash")
            if reason:
                problems.append(ChainProblem(community.slug, row.seq, row.pk, reason))
                broken = True
                break
            prev_hash = row.hash
            expected_seq += 1
            last_id = row.pk
    if not broken:
        head = ChainHead.objects.filter(pk=community.pk).first()
        head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS)
        if head_seq != expected_seq - 1 or head_hash != prev_hash:
            problems.append(ChainProblem(community.slug, expected_seq, None,
                                         _("the chain ends at #%(seq)d but its head says #%(head)d") % {
                                             "seq": expected_seq - 1, "head": head_seq}))
    del last_id
    sums = dict(Posting.objects.filter(account__community=community).values("account_id")
                .annotate(total=Sum("amount")).values_list("account_id", "total"))
    for kept in AccountBalance.objects.filter(account__community=community).select_related("account").order_by("account_id"):
        if kept.balance != sums.get(kept.account_id, 0):
            problems.append(ChainProblem(community.slug, None, None, _(
                "the kept balance of account %(code)s (%(kept)d) differs from its postings (%(sum)d)") % {
                "code": kept.account.code, "kept": kept.balance, "sum": sums.get(kept.account_id, 0)}))
    return problems
