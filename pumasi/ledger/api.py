"""API of the ledger capability: parse, authorize, call a service, serialize.

Reads need the token scope "read", writes "ledger:write". Posting routes take an idempotency key,
as the `Idempotency-Key` header or the `idempotency_key` field (Stripe's semantics).
"""

from __future__ import annotations

from datetime import date, datetime

from django.contrib.auth import get_user_model
from ninja import File, Form, Router, Schema, Status
from ninja.files import UploadedFile
from pydantic import Field

from pumasi.communities import selectors as community_selectors
from pumasi.core.api import idempotent, require_scope
from pumasi.core.errors import InvalidInput
from pumasi.core.pagination import paginate
from pumasi.ledger import permissions, selectors, services
from pumasi.ledger.models import Account

router = Router(tags=["ledger"])
BASE = "/communities/{slug}/ledger"


def _community(request, slug: str, action: str):
    community = community_selectors.community_for(request.user, slug)
    permissions.require(request.user, action, community)
    return community


def _key(request, body_key: str | None) -> str:
    key = request.headers.get("Idempotency-Key") or body_key
    if not key:
        raise InvalidInput("An idempotency key is required.",
                           field_errors={"idempotency_key": ["Send the Idempotency-Key header or the field."]})
    return key


def _account(community, account_id: int, field: str) -> Account:
    found = Account.objects.filter(community=community, pk=account_id).first()
    if found is None:
        raise InvalidInput("Unknown account.", field_errors={field: [f"No account {account_id} in this community."]})
    return found


def _member(community, user_id: int, field: str):
    user = get_user_model().objects.filter(pk=user_id, memberships__community=community).first()
    if user is None:
        raise InvalidInput("Unknown member.", field_errors={field: [f"No member {user_id} in this community."]})
    return user


class AccountOut(Schema):
    id: int
    code: str
    name: str
    type: str
    owner_kind: str
    owner_user_id: int | None
    currency: str
    balance: int

    @staticmethod
    def resolve_balance(obj) -> int:
        return obj.kept_balance.balance


class AccountIn(Schema):
    code: str = Field(min_length=1, max_length=80)
    name: str = Field(min_length=1, max_length=120)
    type: str
    owner_kind: str
    owner_user_id: int | None = None
    currency: str | None = None


class PostingOut(Schema):
    account_id: int
    account_code: str
    amount: int
    currency: str

    @staticmethod
    def resolve_account_code(obj) -> str:
        return obj.account.code


class TransactionOut(Schema):
    id: int
    seq: int
    kind: str
    memo: str
    reference: dict
    idempotency_key: str
    actor_id: int | None
    reverses_id: int | None
    created_at: datetime
    prev_hash: str
    hash: str
    postings: list[PostingOut]

    @staticmethod
    def resolve_postings(obj) -> list:
        return list(obj.postings.all())


class Page(Schema):
    next_cursor: str | None


class AccountPage(Page):
    items: list[AccountOut]


class TransactionPage(Page):
    items: list[TransactionOut]


class PostingIn(Schema):
    account_id: int
    amount: int = Field(description="signed integer minor units, debit positive")


class TransactionIn(Schema):
    idempotency_key: str | None = Field(None, max_length=200)
    memo: str = Field("", max_length=500)
    postings: list[PostingIn] = Field(min_length=2, max_length=500)
    reference: dict = Field(default_factory=dict)


class ReversalIn(Schema):
    idempotency_key: str | None = Field(None, max_length=200)
    memo: str = Field("", max_length=500)


class ShareIn(Schema):
    account_id: int
    basis_points: int | None = None
    fixed_amount: int | None = None


class ShareOut(Schema):
    account_id: int
    account_code: str
    basis_points: int | None
    fixed_amount: int | None

    @staticmethod
    def resolve_account_code(obj) -> str:
        return obj.account.code


class VersionOut(Schema):
    number: int
    remainder: str
    remainder_account_id: int | None
    created_at: datetime
    created_by_id: int | None
    note: str
    shares: list[ShareOut]

    @staticmethod
    def resolve_shares(obj) -> list:
        return list(obj.shares.all())


class RuleOut(Schema):
    id: int
    name: str
    currency: str
    retired_at: datetime | None
    versions: list[VersionOut]

    @staticmethod
    def resolve_versions(obj) -> list:
        return list(obj.versions.all())


class RuleIn(Schema):
    name: str = Field(min_length=1, max_length=120)
    currency: str | None = None
    shares: list[ShareIn] = Field(min_length=1, max_length=50)
    remainder: str = "largest_remainder"
    remainder_account_id: int | None = None
    note: str = Field("", max_length=300)


class RevisionIn(Schema):
    shares: list[ShareIn] = Field(min_length=1, max_length=50)
    remainder: str = "largest_remainder"
    remainder_account_id: int | None = None
    note: str = Field("", max_length=300)


class PartOut(Schema):
    account_id: int
    account_code: str
    amount: int


class IncomeIn(Schema):
    idempotency_key: str | None = Field(None, max_length=200)
    rule_id: int
    amount: int = Field(gt=0)
    memo: str = Field("", max_length=500)


class SettingsOut(Schema):
    platform_cap_bp: int
    public_totals: bool
    escrow_timeout_days: int


class SettingsIn(Schema):
    platform_cap_bp: int | None = None
    public_totals: bool | None = None
    escrow_timeout_days: int | None = None


class TransparencyOut(Schema):
    start: date
    end: date
    currency: str
    income: int
    to_owner: dict[str, int]
    platform_percent: float | None
    paid_out: int
    my_earnings: int | None
    members: list[tuple[str, int]]


class SettlementIn(Schema):
    period: str = Field(description="2026-03, 2026, or 2026-03-01..2026-03-16")
    currency: str | None = None


class StatementOut(Schema):
    member_id: int
    account_id: int
    earned: int
    paid: int
    payout_id: int | None


class SettlementOut(Schema):
    id: int
    currency: str
    period_start: date
    period_end: date
    status: str
    members_total: int
    members_done: int
    total_earned: int
    total_paid: int
    completed_at: datetime | None


class SettlementDetail(SettlementOut):
    statements: list[StatementOut]


class SettlementPage(Page):
    items: list[SettlementOut]


class EscrowIn(Schema):
    idempotency_key: str | None = Field(None, max_length=180)
    seller_id: int
    moderator_id: int
    amount: int = Field(gt=0)
    currency: str | None = None
    memo: str = Field("", max_length=500)
    timeout_days: int | None = Field(None, ge=1, le=365)


class EscrowOut(Schema):
    id: int
    buyer_id: int
    seller_id: int
    moderator_id: int
    amount: int
    currency: str
    memo: str
    status: str
    timeout_at: datetime
    disputed_at: datetime | None
    funding_id: int
    resolution_id: int | None


class EscrowPage(Page):
    items: list[EscrowOut]


class DecisionIn(Schema):
    decision: str


class DisputeIn(Schema):
    reason: str = Field(min_length=1, max_length=500)


class PoolIn(Schema):
    name: str = Field(min_length=1, max_length=120)
    contribution_amount: int = Field(gt=0)
    claim_rule: str
    year_end_rule: str
    currency: str | None = None


class PoolOut(Schema):
    id: int
    name: str
    currency: str
    contribution_amount: int
    claim_rule: str
    year_end_rule: str
    funds: int

    @staticmethod
    def resolve_funds(obj) -> int:
        return -obj.account.kept_balance.balance


class ContributionIn(Schema):
    month: str = Field(pattern=r"^\d{4}-\d{2}$")


class ContributionOut(Schema):
    id: int
    month: str
    amount: int
    transaction_id: int


class ClaimOut(Schema):
    id: int
    claimant_id: int
    amount: int
    paid_amount: int
    description: str
    status: str


class ClaimDecisionIn(Schema):
    approve: bool


class YearEndIn(Schema):
    year: int


class YearEndOut(Schema):
    year: int
    rule: str
    surplus: int
    refunded: int
    carried_over: int


# --- accounts and transactions -------------------------------------------------------------------

@router.get(f"{BASE}/accounts", response=AccountPage)
def list_accounts(request, slug: str, cursor: str | None = None, limit: int = 50):
    community = _community(request, slug, "view_books")
    return paginate(selectors.accounts(community), cursor=cursor, limit=limit, newest_first=False)


@router.post(f"{BASE}/accounts", response={201: AccountOut})
def create_account(request, slug: str, payload: AccountIn):
    require_scope(request, "ledger:write")
    community = _community(request, slug, "view_books")
    owner = _member(community, payload.owner_user_id, "owner_user_id") if payload.owner_user_id else None
    account = services.create_account(actor=request.user, community=community, code=payload.code, name=payload.name,
                                      type=payload.type, owner_kind=payload.owner_kind, owner_user=owner,
                                      currency=payload.currency)
    return Status(201, selectors.account(community, account.pk))


@router.get(f"{BASE}/transactions", response=TransactionPage)
def list_transactions(request, slug: str, account_id: int | None = None, cursor: str | None = None, limit: int = 50):
    community = _community(request, slug, "view_books")
    return paginate(selectors.transactions(community, account_id), cursor=cursor, limit=limit)


@router.get(f"{BASE}/transactions/{{transaction_id}}", response=TransactionOut)
def get_transaction(request, slug: str, transaction_id: int):
    return selectors.transaction(_community(request, slug, "view_books"), transaction_id)


@router.post(f"{BASE}/transactions", response={201: TransactionOut}, summary="Post a manual transaction")
@idempotent
def post_transaction(request, slug: str, payload: TransactionIn):
    require_scope(request, "ledger:write")
    community = _community(request, slug, "view_books")
    postings = [(_account(community, p.account_id, f"postings.{i}.account_id"), p.amount)
                for i, p in enumerate(payload.postings)]
    tx = services.post_manual_transaction(actor=request.user, community=community,
                                          idempotency_key=_key(request, payload.idempotency_key), memo=payload.memo,
                                          postings=postings, reference=payload.reference)
    return Status(201, selectors.transaction(community, tx.pk))


@router.post(f"{BASE}/transactions/{{transaction_id}}/reversal", response={201: TransactionOut})
@idempotent
def reverse(request, slug: str, transaction_id: int, payload: ReversalIn):
    require_scope(request, "ledger:write")
    community = _community(request, slug, "view_books")
    tx = services.reverse_manually(actor=request.user, transaction=selectors.transaction(community, transaction_id),
                                   idempotency_key=_key(request, payload.idempotency_key), memo=payload.memo)
    return Status(201, selectors.transaction(community, tx.pk))


# --- splits, settings, transparency -------------------------------------------------------------

def _shares(community, shares: list[ShareIn]) -> list[dict]:
    return [{"account": _account(community, s.account_id, f"shares.{i}.account_id"), "basis_points": s.basis_points,
             "fixed_amount": s.fixed_amount} for i, s in enumerate(shares)]


@router.get(f"{BASE}/split-rules", response=list[RuleOut], summary="Every split rule with its history")
def list_rules(request, slug: str):
    return list(selectors.split_rules(_community(request, slug, "view_transparency")))


@router.get(f"{BASE}/split-rules/{{rule_id}}", response=RuleOut)
def get_rule(request, slug: str, rule_id: int):
    return selectors.split_rule(_community(request, slug, "view_transparency"), rule_id)


@router.post(f"{BASE}/split-rules", response={201: RuleOut})
def create_rule(request, slug: str, payload: RuleIn):
    require_scope(request, "ledger:write")
    community = _community(request, slug, "view_books")
    remainder_account = (_account(community, payload.remainder_account_id, "remainder_account_id")
                         if payload.remainder_account_id else None)
    rule = services.create_split_rule(actor=request.user, community=community, name=payload.name,
                                      shares=_shares(community, payload.shares), remainder=payload.remainder,
                                      remainder_account=remainder_account, currency=payload.currency, note=payload.note)
    return Status(201, selectors.split_rule(community, rule.pk))


@router.post(f"{BASE}/split-rules/{{rule_id}}/versions", response={201: RuleOut}, summary="Revise a split rule")
def revise_rule(request, slug: str, rule_id: int, payload: RevisionIn):
    require_scope(request, "ledger:write")
    community = _community(request, slug, "view_books")
    rule = selectors.split_rule(community, rule_id)
    remainder_account = (_account(community, payload.remainder_account_id, "remainder_account_id")
                         if payload.remainder_account_id else None)
    services.revise_split_rule(actor=request.user, rule=rule, shares=_shares(community, payload.shares),
                               remainder=payload.remainder, remainder_account=remainder_account, note=payload.note)
    return Status(201, selectors.split_rule(community, rule.pk))


@router.get(f"{BASE}/split-rules/{{rule_id}}/allocation", response=list[PartOut], summary="Preview a split")
def preview_allocation(request, slug: str, rule_id: int, amount: int):
    rule = selectors.split_rule(_community(request, slug, "view_transparency"), rule_id)
    return [{"account_id": a.pk, "account_code": a.code, "amount": part} for a, part in services.allocate(amount, rule)]


@router.post(f"{BASE}/income", response={201: TransactionOut}, summary="Record income split by a rule")
@idempotent
def record_income(request, slug: str, payload: IncomeIn):
    require_scope(request, "ledger:write")
    community = _community(request, slug, "view_books")
    rule = selectors.split_rule(community, payload.rule_id)
    tx = services.record_income(actor=request.user, community=community, rule=rule, amount=payload.amount,
                                idempotency_key=_key(request, payload.idempotency_key), memo=payload.memo)
    return Status(201, selectors.transaction(community, tx.pk))


@router.get(f"{BASE}/settings", response=SettingsOut)
def get_settings(request, slug: str):
    return selectors.ledger_settings(_community(request, slug, "view_transparency"))


@router.patch(f"{BASE}/settings", response=SettingsOut)
def update_settings(request, slug: str, payload: SettingsIn):
    require_scope(request, "ledger:write")
    community = _community(request, slug, "view_transparency")
    return services.update_ledger_settings(actor=request.user, community=community, **payload.dict(exclude_none=True))


@router.get(f"{BASE}/transparency", response=TransparencyOut)
def transparency(request, slug: str, period: str):
    community = _community(request, slug, "view_transparency")
    start, end = services.parse_period(period)
    return selectors.transparency(community, start, end, viewer=request.user,
                                  with_members=permissions.can(request.user, "view_books", community)).__dict__


# --- settlements ---------------------------------------------------------------------------------

@router.get(f"{BASE}/settlements", response=SettlementPage)
def list_settlements(request, slug: str, cursor: str | None = None, limit: int = 50):
    return paginate(selectors.settlements(_community(request, slug, "view_books")), cursor=cursor, limit=limit)


@router.post(f"{BASE}/settlements", response={201: SettlementDetail}, summary="Settle a period (idempotent)")
@idempotent
def create_settlement(request, slug: str, payload: SettlementIn):
    require_scope(request, "ledger:write")
    community = _community(request, slug, "view_books")
    start, end = services.parse_period(payload.period)
    settlement = services.settle(actor=request.user, community=community, period_start=start, period_end=end,
                                 currency=payload.currency)
    return Status(201, _settlement_detail(request, community, settlement))


def _settlement_detail(request, community, settlement):
    see_all = permissions.can(request.user, "manage", community)
    return {**SettlementOut.model_validate(settlement, from_attributes=True).model_dump(),
            "statements": list(selectors.statements(settlement, request.user, see_all))}


@router.get(f"{BASE}/settlements/{{settlement_id}}", response=SettlementDetail,
            summary="A settlement with its statements (members see their own)")
def get_settlement(request, slug: str, settlement_id: int):
    community = _community(request, slug, "view_books")
    return _settlement_detail(request, community, selectors.settlement(community, settlement_id))


# --- escrow --------------------------------------------------------------------------------------

@router.get(f"{BASE}/escrows", response=EscrowPage, summary="Escrows I am a party to (all, for the committee)")
def list_escrows(request, slug: str, cursor: str | None = None, limit: int = 50):
    community = _community(request, slug, "view_books")
    rows = selectors.escrows(community, request.user, see_all=permissions.can(request.user, "manage", community))
    return paginate(rows, cursor=cursor, limit=limit)


@router.post(f"{BASE}/escrows", response={201: EscrowOut}, summary="Pay into escrow (the caller is the buyer)")
@idempotent
def open_escrow(request, slug: str, payload: EscrowIn):
    require_scope(request, "ledger:write")
    community = _community(request, slug, "participate")
    return Status(201, services.open_escrow(
        actor=request.user, community=community, seller=_member(community, payload.seller_id, "seller_id"),
        moderator=_member(community, payload.moderator_id, "moderator_id"), amount=payload.amount,
        idempotency_key=_key(request, payload.idempotency_key), memo=payload.memo, currency=payload.currency,
        timeout_days=payload.timeout_days))


@router.get(f"{BASE}/escrows/{{escrow_id}}", response=EscrowOut)
def get_escrow(request, slug: str, escrow_id: int):
    return selectors.escrow(_community(request, slug, "view_books"), escrow_id)


@router.post(f"{BASE}/escrows/{{escrow_id}}/approvals", response=EscrowOut, summary="Release or refund (2 of 3)")
@idempotent
def approve_escrow(request, slug: str, escrow_id: int, payload: DecisionIn):
    require_scope(request, "ledger:write")
    community = _community(request, slug, "view_books")
    escrow = services.approve_escrow(actor=request.user, escrow=selectors.escrow(community, escrow_id),
                                     decision=payload.decision)
    return selectors.escrow(community, escrow.pk)


@router.post(f"{BASE}/escrows/{{escrow_id}}/dispute", response=EscrowOut)
def dispute_escrow(request, slug: str, escrow_id: int, payload: DisputeIn):
    require_scope(request, "ledger:write")
    community = _community(request, slug, "view_books")
    return services.dispute_escrow(actor=request.user, escrow=selectors.escrow(community, escrow_id),
                                   reason=payload.reason)


@router.post(f"{BASE}/escrows/{{escrow_id}}/release", response=EscrowOut,
             summary="The seller releases alone after an undisputed timeout")
@idempotent
def release_escrow(request, slug: str, escrow_id: int):
    require_scope(request, "ledger:write")
    community = _community(request, slug, "view_books")
    escrow = services.release_after_timeout(actor=request.user, escrow=selectors.escrow(community, escrow_id))
    return selectors.escrow(community, escrow.pk)


# --- pools ---------------------------------------------------------------------------------------

@router.get(f"{BASE}/pools", response=list[PoolOut])
def list_pools(request, slug: str):
    return list(selectors.pools(_community(request, slug, "view_books")))


@router.post(f"{BASE}/pools", response={201: PoolOut})
def create_pool(request, slug: str, payload: PoolIn):
    require_scope(request, "ledger:write")
    community = _community(request, slug, "view_books")
    pool = services.create_pool(actor=request.user, community=community, **payload.dict())
    return Status(201, selectors.pool(community, pool.pk))


@router.post(f"{BASE}/pools/{{pool_id}}/members", response={201: None}, summary="Join a pool")
def join_pool(request, slug: str, pool_id: int):
    require_scope(request, "ledger:write")
    community = _community(request, slug, "view_books")
    services.join_pool(actor=request.user, pool=selectors.pool(community, pool_id))
    return Status(201, None)


@router.post(f"{BASE}/pools/{{pool_id}}/contributions", response={201: ContributionOut})
@idempotent
def contribute(request, slug: str, pool_id: int, payload: ContributionIn):
    require_scope(request, "ledger:write")
    community = _community(request, slug, "view_books")
    return Status(201, services.contribute(actor=request.user, pool=selectors.pool(community, pool_id),
                                           month=payload.month))


@router.post(f"{BASE}/pools/{{pool_id}}/claims", response={201: ClaimOut}, summary="File a claim with evidence")
def file_claim(request, slug: str, pool_id: int, amount: Form[int], description: Form[str],
               evidence: File[UploadedFile]):
    require_scope(request, "ledger:write")
    community = _community(request, slug, "view_books")
    return Status(201, services.file_claim(actor=request.user, pool=selectors.pool(community, pool_id), amount=amount,
                                           description=description, evidence=evidence))


@router.post(f"{BASE}/pools/{{pool_id}}/claims/{{claim_id}}/decision", response=ClaimOut)
@idempotent
def decide_claim(request, slug: str, pool_id: int, claim_id: int, payload: ClaimDecisionIn):
    require_scope(request, "ledger:write")
    community = _community(request, slug, "view_books")
    claim = selectors.claim(selectors.pool(community, pool_id), claim_id)
    return services.decide_claim(actor=request.user, claim=claim, approve=payload.approve)


@router.post(f"{BASE}/pools/{{pool_id}}/year-end", response={201: YearEndOut})
@idempotent
def close_year(request, slug: str, pool_id: int, payload: YearEndIn):
    require_scope(request, "ledger:write")
    community = _community(request, slug, "view_books")
    return Status(201, services.close_pool_year(actor=request.user, pool=selectors.pool(community, pool_id),
                                                year=payload.year))
