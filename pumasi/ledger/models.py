"""Database models of the cooperative ledger: accounts, append-only transactions and postings,
kept balances, the per-community hash chain, split rules, settlements, escrow and mutual-aid pools.

Amounts are signed integers in minor units, debit positive (so a liability or income account
normally has a negative balance). Transactions and postings are never updated nor deleted: the
database refuses it by trigger (see migrations/0002_append_only_triggers.py).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

ACCOUNT_TYPES = ["asset", "liability", "equity", "income", "expense"]
OWNER_KINDS = ["community", "member", "pool", "escrow", "outside", "platform"]


class LedgerSettings(models.Model):
    """Per-community ledger rules."""

    community = models.OneToOneField("communities.Community", on_delete=models.CASCADE, related_name="ledger_settings")
    # The most any intermediary (owner_kind "platform") may take through a split rule, in basis points.
    platform_cap_bp = models.PositiveIntegerField(_("platform cap (basis points)"), default=1000)
    public_totals = models.BooleanField(_("show totals to non-members"), default=False)
    escrow_timeout_days = models.PositiveIntegerField(_("escrow timeout (days)"), default=14)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(platform_cap_bp__lte=10000), name="ledger_settings_cap_range"),
            models.CheckConstraint(condition=Q(escrow_timeout_days__gte=1, escrow_timeout_days__lte=365),
                                   name="ledger_settings_escrow_timeout_range"),
        ]

    def __str__(self) -> str:
        return f"LedgerSettings #{self.pk}"


class ChainHead(models.Model):
    """The tip of a community's hash chain. Locking this row serialises posting per community."""

    community = models.OneToOneField("communities.Community", on_delete=models.CASCADE, primary_key=True,
                                     related_name="ledger_chain")
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default="0" * 64)

    def __str__(self) -> str:
        return f"ChainHead #{self.pk}"


class Account(models.Model):
    class Type(models.TextChoices):
        ASSET = "asset", _("Asset")
        LIABILITY = "liability", _("Liability")
        EQUITY = "equity", _("Equity")
        INCOME = "income", _("Income")
        EXPENSE = "expense", _("Expense")

    class OwnerKind(models.TextChoices):
        COMMUNITY = "community", _("Community")
        MEMBER = "member", _("Member")
        POOL = "pool", _("Mutual-aid pool")
        ESCROW = "escrow", _("Escrow")
        OUTSIDE = "outside", _("Outside world")
        PLATFORM = "platform", _("Platform / intermediary")

    community = models.ForeignKey("communities.Community", on_delete=models.PROTECT, related_name="ledger_accounts")
    code = models.CharField(_("code"), max_length=80)
    name = models.CharField(_("name"), max_length=120)
    type = models.CharField(_("type"), max_length=10, choices=Type.choices)
    owner_kind = models.CharField(_("owner"), max_length=10, choices=OwnerKind.choices)
    owner_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="ledger_accounts")
    currency = models.CharField(_("currency"), max_length=3)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["community", "code", "currency"], name="ledger_account_code_unique"),
            models.CheckConstraint(condition=Q(type__in=ACCOUNT_TYPES), name="ledger_account_type_valid"),
            models.CheckConstraint(condition=Q(owner_kind__in=OWNER_KINDS), name="ledger_account_owner_valid"),
            models.CheckConstraint(
                condition=Q(owner_kind="member", owner_user__isnull=False) | ~Q(owner_kind="member"),
                name="ledger_account_member_has_user",
            ),
            models.CheckConstraint(condition=~Q(code="") & ~Q(name=""), name="ledger_account_code_name_not_empty"),
        ]
        indexes = [models.Index(fields=["community", "owner_kind"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.code}, {self.currency})"

    @property
    def credit_normal(self) -> bool:
        return self.type in ("liability", "equity", "income")


class AccountBalance(models.Model):
    """The balance of one account, kept in the same database transaction as its postings.

    `guard` makes the database refuse overdrafts: 1 = may never go below zero (debit-normal),
    -1 = may never go above zero (credit-normal: pools and escrows cannot hand out more than they hold).
    """

    account = models.OneToOneField(Account, on_delete=models.PROTECT, primary_key=True, related_name="kept_balance")
    balance = models.BigIntegerField(default=0)
    postings = models.BigIntegerField(default=0)
    guard = models.SmallIntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(guard=0) | Q(guard=1, balance__gte=0) | Q(guard=-1, balance__lte=0),
                name="ledger_balance_guard",
            ),
            models.CheckConstraint(condition=Q(guard__in=[-1, 0, 1]), name="ledger_balance_guard_valid"),
        ]

    def __str__(self) -> str:
        return f"AccountBalance #{self.pk}"


class Transaction(models.Model):
    class Kind(models.TextChoices):
        MANUAL = "manual", _("Manual entry")
        SPLIT = "split", _("Split income")
        REVERSAL = "reversal", _("Reversal")
        PAYOUT = "payout", _("Payout")
        ESCROW = "escrow", _("Escrow")
        POOL = "pool", _("Mutual-aid pool")
        SALE = "sale", _("Sale")
        FEE = "fee", _("Fee")

    community = models.ForeignKey("communities.Community", on_delete=models.PROTECT, related_name="ledger_transactions")
    seq = models.BigIntegerField()
    idempotency_key = models.CharField(max_length=200)
    # SHA-256 of the request content, to tell a replay from a reused key (Stripe's semantics).
    request_hash = models.CharField(max_length=64)
    kind = models.CharField(max_length=20, default="manual")
    memo = models.CharField(max_length=500, blank=True)
    reference = models.JSONField(default=dict, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                              related_name="+")
    reverses = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["community", "idempotency_key"], name="ledger_tx_idempotency_unique"),
            models.UniqueConstraint(fields=["community", "seq"], name="ledger_tx_seq_unique"),
            models.CheckConstraint(condition=Q(seq__gte=1), name="ledger_tx_seq_positive"),
            models.CheckConstraint(condition=~Q(idempotency_key=""), name="ledger_tx_key_not_empty"),
        ]
        indexes = [models.Index(fields=["community", "created_at"])]

    def __str__(self) -> str:
        return f"#{self.seq} {self.memo}"


class Posting(models.Model):
    transaction = models.ForeignKey(Transaction, on_delete=models.PROTECT, related_name="postings")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="postings")
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="ledger_posting_not_zero"),
            models.CheckConstraint(condition=Q(amount__gte=-(10**15), amount__lte=10**15), name="ledger_posting_range"),
        ]
        indexes = [models.Index(fields=["account", "transaction"])]

    def __str__(self) -> str:
        return f"Posting #{self.pk}"


class SplitRule(models.Model):
    """A named rule for dividing income. Its content lives in versions; the newest one is in force."""

    community = models.ForeignKey("communities.Community", on_delete=models.PROTECT, related_name="ledger_split_rules")
    name = models.CharField(_("name"), max_length=120)
    currency = models.CharField(_("currency"), max_length=3)
    retired_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["community", "name"], name="ledger_split_rule_name_unique"),
            models.CheckConstraint(condition=~Q(name=""), name="ledger_split_rule_name_not_empty"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def current(self) -> SplitRuleVersion | None:
        return self.versions.order_by("-number").first()


class SplitRuleVersion(models.Model):
    class Remainder(models.TextChoices):
        LARGEST = "largest_remainder", _("Shares add up to the whole; rounding by largest remainder")
        ACCOUNT = "to_account", _("Whatever is left goes to one account")

    rule = models.ForeignKey(SplitRule, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    remainder = models.CharField(max_length=20, choices=Remainder.choices)
    remainder_account = models.ForeignKey(Account, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rule", "number"], name="ledger_split_version_unique"),
            models.CheckConstraint(condition=Q(remainder__in=["largest_remainder", "to_account"]),
                                   name="ledger_split_remainder_valid"),
            models.CheckConstraint(
                condition=Q(remainder="largest_remainder") | Q(remainder_account__isnull=False),
                name="ledger_split_remainder_account_given",
            ),
        ]
        ordering = ["number"]

    def __str__(self) -> str:
        return f"SplitRuleVersion #{self.pk}"


class SplitShare(models.Model):
    version = models.ForeignKey(SplitRuleVersion, on_delete=models.PROTECT, related_name="shares")
    position = models.PositiveIntegerField()
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    basis_points = models.PositiveIntegerField(null=True, blank=True)
    fixed_amount = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["version", "account"], name="ledger_split_share_account_once"),
            models.UniqueConstraint(fields=["version", "position"], name="ledger_split_share_position_once"),
            models.CheckConstraint(
                condition=(Q(basis_points__isnull=False, fixed_amount__isnull=True, basis_points__lte=10000)
                           | Q(basis_points__isnull=True, fixed_amount__isnull=False, fixed_amount__gt=0)),
                name="ledger_split_share_one_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"SplitShare #{self.pk}"


class Settlement(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        COMPLETED = "completed", _("Completed")

    community = models.ForeignKey("communities.Community", on_delete=models.PROTECT, related_name="ledger_settlements")
    currency = models.CharField(max_length=3)
    period_start = models.DateField()
    period_end = models.DateField(help_text="exclusive")
    status = models.CharField(max_length=10, choices=Status.choices, default="running")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    members_total = models.PositiveIntegerField(default=0)
    members_done = models.PositiveIntegerField(default=0)
    total_earned = models.BigIntegerField(default=0)
    total_paid = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["community", "currency", "period_start", "period_end"],
                                    name="ledger_settlement_once_per_period"),
            models.CheckConstraint(condition=Q(period_end__gt=models.F("period_start")), name="ledger_settlement_period_order"),
            models.CheckConstraint(condition=Q(status__in=["running", "completed"]), name="ledger_settlement_status_valid"),
        ]
        ordering = ["-period_start"]

    def __str__(self) -> str:
        return f"Settlement #{self.pk}"


class Statement(models.Model):
    settlement = models.ForeignKey(Settlement, on_delete=models.PROTECT, related_name="statements")
    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="ledger_statements")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    earned = models.BigIntegerField()
    paid = models.BigIntegerField()
    payout = models.OneToOneField(Transaction, null=True, blank=True, on_delete=models.PROTECT, related_name="statement")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["settlement", "member"], name="ledger_statement_once_per_member"),
            models.CheckConstraint(condition=Q(paid__gte=0), name="ledger_statement_paid_not_negative"),
        ]

    def __str__(self) -> str:
        return f"Statement #{self.pk}"


class StatementLine(models.Model):
    statement = models.ForeignKey(Statement, on_delete=models.PROTECT, related_name="lines")
    transaction = models.ForeignKey(Transaction, on_delete=models.PROTECT, related_name="+")
    posted_at = models.DateTimeField()
    memo = models.CharField(max_length=500, blank=True)
    amount = models.BigIntegerField(help_text="what the member earned by this line (credit to them is positive)")

    class Meta:
        ordering = ["posted_at", "id"]

    def __str__(self) -> str:
        return f"StatementLine #{self.pk}"


class Escrow(models.Model):
    class Status(models.TextChoices):
        HELD = "held", _("Held")
        RELEASED = "released", _("Released to the seller")
        REFUNDED = "refunded", _("Refunded to the buyer")

    community = models.ForeignKey("communities.Community", on_delete=models.PROTECT, related_name="ledger_escrows")
    buyer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    seller = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    moderator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    account = models.OneToOneField(Account, on_delete=models.PROTECT, related_name="escrow")
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    memo = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default="held")
    timeout_at = models.DateTimeField()
    disputed_at = models.DateTimeField(null=True, blank=True)
    dispute_reason = models.CharField(max_length=500, blank=True)
    funding = models.OneToOneField(Transaction, on_delete=models.PROTECT, related_name="+")
    resolution = models.OneToOneField(Transaction, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="ledger_escrow_amount_positive"),
            models.CheckConstraint(condition=Q(status__in=["held", "released", "refunded"]), name="ledger_escrow_status_valid"),
            models.CheckConstraint(condition=~Q(buyer=models.F("seller")), name="ledger_escrow_buyer_not_seller"),
            models.CheckConstraint(
                condition=~Q(moderator=models.F("buyer")) & ~Q(moderator=models.F("seller")),
                name="ledger_escrow_moderator_independent",
            ),
            models.CheckConstraint(
                condition=Q(status="held", resolution__isnull=True) | (~Q(status="held") & Q(resolution__isnull=False)),
                name="ledger_escrow_resolution_matches_status",
            ),
        ]

    def __str__(self) -> str:
        return f"Escrow #{self.pk}"


class EscrowApproval(models.Model):
    escrow = models.ForeignKey(Escrow, on_delete=models.PROTECT, related_name="approvals")
    party = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    role = models.CharField(max_length=10)
    decision = models.CharField(max_length=10)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["escrow", "party"], name="ledger_escrow_one_vote_per_party"),
            models.CheckConstraint(condition=Q(decision__in=["release", "refund"]), name="ledger_escrow_decision_valid"),
            models.CheckConstraint(condition=Q(role__in=["buyer", "seller", "moderator"]), name="ledger_escrow_role_valid"),
        ]

    def __str__(self) -> str:
        return f"EscrowApproval #{self.pk}"


class Pool(models.Model):
    class ClaimRule(models.TextChoices):
        QUEUE = "queue", _("A claim beyond the funds waits until the pool can pay it in full")
        PARTIAL = "partial", _("A claim beyond the funds is paid in part now, the rest as funds arrive")

    class YearEndRule(models.TextChoices):
        REFUND = "refund", _("Refund the surplus in proportion to contributions")
        CARRY = "carry_over", _("Carry the surplus over to next year")

    community = models.ForeignKey("communities.Community", on_delete=models.PROTECT, related_name="ledger_pools")
    name = models.CharField(_("name"), max_length=120)
    currency = models.CharField(_("currency"), max_length=3)
    account = models.OneToOneField(Account, on_delete=models.PROTECT, related_name="pool")
    contribution_amount = models.BigIntegerField(_("monthly contribution"))
    claim_rule = models.CharField(_("claims beyond the funds"), max_length=10, choices=ClaimRule.choices)
    year_end_rule = models.CharField(_("at year end"), max_length=12, choices=YearEndRule.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["community", "name"], name="ledger_pool_name_unique"),
            models.CheckConstraint(condition=Q(contribution_amount__gt=0), name="ledger_pool_contribution_positive"),
            models.CheckConstraint(condition=Q(claim_rule__in=["queue", "partial"]), name="ledger_pool_claim_rule_valid"),
            models.CheckConstraint(condition=Q(year_end_rule__in=["refund", "carry_over"]), name="ledger_pool_year_rule_valid"),
        ]

    def __str__(self) -> str:
        return self.name


class PoolMember(models.Model):
    pool = models.ForeignKey(Pool, on_delete=models.PROTECT, related_name="members")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    joined_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["pool", "user"], name="ledger_pool_member_once")]

    def __str__(self) -> str:
        return f"PoolMember #{self.pk}"


class PoolContribution(models.Model):
    pool = models.ForeignKey(Pool, on_delete=models.PROTECT, related_name="contributions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    month = models.CharField(max_length=7, help_text="YYYY-MM")
    amount = models.BigIntegerField()
    transaction = models.OneToOneField(Transaction, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["pool", "user", "month"], name="ledger_pool_contribution_once_a_month"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="ledger_pool_contribution_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"PoolContribution #{self.pk}"


def claim_evidence_path(instance, filename: str) -> str:
    return f"ledger/claims/{instance.pool.community_id}/{timezone.now():%Y%m}/{filename}"


class PoolClaim(models.Model):
    class Status(models.TextChoices):
        FILED = "filed", _("Filed")
        REJECTED = "rejected", _("Rejected")
        QUEUED = "queued", _("Approved, waiting for funds")
        PARTLY_PAID = "partly_paid", _("Approved, partly paid")
        PAID = "paid", _("Paid")

    pool = models.ForeignKey(Pool, on_delete=models.PROTECT, related_name="claims")
    claimant = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    amount = models.BigIntegerField()
    paid_amount = models.BigIntegerField(default=0)
    description = models.CharField(max_length=1000)
    evidence = models.FileField(upload_to=claim_evidence_path)
    status = models.CharField(max_length=12, choices=Status.choices, default="filed")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="ledger_claim_amount_positive"),
            models.CheckConstraint(condition=Q(paid_amount__gte=0, paid_amount__lte=models.F("amount")),
                                   name="ledger_claim_paid_within_amount"),
            models.CheckConstraint(condition=Q(status__in=["filed", "rejected", "queued", "partly_paid", "paid"]),
                                   name="ledger_claim_status_valid"),
        ]

    def __str__(self) -> str:
        return f"PoolClaim #{self.pk}"


class PoolYearEnd(models.Model):
    pool = models.ForeignKey(Pool, on_delete=models.PROTECT, related_name="year_ends")
    year = models.PositiveIntegerField()
    rule = models.CharField(max_length=12)
    surplus = models.BigIntegerField()
    refunded = models.BigIntegerField(default=0)
    carried_over = models.BigIntegerField(default=0)
    transaction = models.OneToOneField(Transaction, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["pool", "year"], name="ledger_pool_year_end_once"),
            models.CheckConstraint(condition=Q(surplus__gte=0, refunded__gte=0, carried_over__gte=0),
                                   name="ledger_pool_year_end_not_negative"),
        ]

    def __str__(self) -> str:
        return f"PoolYearEnd #{self.pk}"
