"""Write path of the cooperative ledger — the one place money moves.

Public interface for other capabilities (parking fees, sales, payouts call these):

    ensure_account(*, community, code, name, type, owner_kind, owner_user=None, currency=None) -> Account
        Idempotent get-or-create by (community, code, currency). type is one of asset,
        liability, equity, income, expense; owner_kind one of community, member, pool,
        escrow, outside, platform (owner_user is required for "member"). currency defaults
        to the community's. Asking again with a different type/owner is a Conflict.

    member_account(*, community, user, currency=None) -> Account
        What the community owes this person (a liability, code "member:<user id>").

    standard_account(*, community, key, currency=None) -> Account
        The community's usual accounts: "cash" (asset), "income" (income), "platform"
        (liability to the intermediary), "expenses" (expense), "equity" (opening balances).

    post_transaction(*, community, actor, idempotency_key, memo, postings, kind="manual",
                     reference=None) -> Transaction
        postings: [(Account, amount), ...] in signed integer minor units, debit positive,
        at least two, summing to zero per currency. idempotency_key is unique per community
        (Stripe's semantics): the same key with the same content returns the original
        transaction and writes nothing; the same key with other content raises Conflict
        (code "idempotency_key_reused"). actor may be None for system postings. The caller
        authorizes; the ledger only checks the entry itself. occurred_at (optional, never in the
        future) dates an entry recorded late, e.g. an import; the chain order is still `seq`.

    post_transactions(*, community, actor, entries) -> list[Transaction]
        Many entries (dicts with the keyword arguments of post_transaction) in one database
        transaction: one chain lock, bulk inserts, one balance update per account.

    reverse_transaction(*, actor, transaction, idempotency_key, memo="") -> Transaction
        The correction: a new transaction with every posting negated, pointing at the
        original. A transaction is reversed at most once; a reversal is not itself reversed.

    allocate(amount, rule) -> list[tuple[Account, int]]
        Divide a non-negative amount by a SplitRule (its version in force) or SplitRuleVersion:
        fixed amounts first, then basis points of the rest; rounding by largest remainder
        (ties to the earlier share), or the rest to the rule's remainder account. The parts
        always sum to the amount exactly; zero parts are left out.

    create_split_rule(*, actor, community, name, shares, remainder="largest_remainder",
                      remainder_account=None, currency=None, note="") -> SplitRule
    revise_split_rule(*, actor, rule, shares, remainder=..., remainder_account=None, note="")
    retire_split_rule(*, actor, rule)
        shares: [{"account": Account, "basis_points": int} or {"account": ..., "fixed_amount": int}].
        Platform-owned accounts may take basis points only, at most LedgerSettings.platform_cap_bp.

    split_income(*, community, actor, idempotency_key, memo, rule, amount, debit_account=None,
                 kind="split", reference=None) -> Transaction
        Money received (debit `debit_account`, default cash) divided by the rule.

Also here: settlements (settle), escrow 2-of-3 (open_escrow, approve_escrow, dispute_escrow,
release_after_timeout), mutual-aid pools (create_pool, join_pool, contribute, file_claim,
decide_claim, close_pool_year) and update_ledger_settings. All amounts are integers in minor
units (see pumasi.ledger.money for the exponent table). Every refusal is a DomainError raised
before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import IntegrityError
from django.db import transaction as dbtx
from django.db.models import F, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from pumasi.communities.models import Membership
from pumasi.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from pumasi.core.events import publish_event
from pumasi.ledger import permissions
from pumasi.ledger.models import (
    ACCOUNT_TYPES,
    OWNER_KINDS,
    Account,
    AccountBalance,
    ChainHead,
    Escrow,
    EscrowApproval,
    LedgerSettings,
    Pool,
    PoolClaim,
    PoolContribution,
    PoolMember,
    PoolYearEnd,
    Posting,
    Settlement,
    SplitRule,
    SplitRuleVersion,
    SplitShare,
    Statement,
    StatementLine,
    Transaction,
)
from pumasi.ledger.money import EXPONENTS, MAX_AMOUNT
from pumasi.platform.services import record_audit

GENESIS = "0" * 64
CODE_RE = re.compile(r"^[a-z0-9][a-z0-9:._-]{0,79}$")
KIND_RE = re.compile(r"^[a-z][a-z0-9_]{1,19}$")
MAX_POSTINGS = 500
MAX_BATCH = 10_000

STANDARD_ACCOUNTS = {
    "cash": ("Cash and bank", "asset", "community"),
    "income": ("Community income", "income", "community"),
    "platform": ("Owed to the platform", "liability", "platform"),
    "expenses": ("Community expenses", "expense", "community"),
    "equity": ("Opening balances", "equity", "community"),
}


# --- accounts ----------------------------------------------------------------------------------

def ensure_account(*, community, code: str, name: str, type: str, owner_kind: str, owner_user=None,
                   currency: str | None = None) -> Account:
    currency = currency or community.currency
    errors: dict[str, list[str]] = {}
    if not isinstance(code, str) or not CODE_RE.match(code):
        errors["code"] = [_("1 to 80 lower-case letters, digits and : . _ - starting with a letter or digit.")]
    if not isinstance(name, str) or not (1 <= len(name.strip()) <= 120):
        errors["name"] = [_("Give a name of 1 to 120 characters.")]
    if type not in ACCOUNT_TYPES:
        errors["type"] = [_("Choose one of: %(values)s.") % {"values": ", ".join(ACCOUNT_TYPES)}]
    if owner_kind not in OWNER_KINDS:
        errors["owner_kind"] = [_("Choose one of: %(values)s.") % {"values": ", ".join(OWNER_KINDS)}]
    if owner_kind == "member" and owner_user is None:
        errors["owner_user"] = [_("A member's account needs the member.")]
    if currency not in EXPONENTS:
        errors["currency"] = [_("Unknown currency %(code)s.") % {"code": currency}]
    if errors:
        raise InvalidInput(_("The account was not created."), field_errors=errors)
    existing = Account.objects.filter(community=community, code=code, currency=currency).first()
    if existing is None:
        try:
            with dbtx.atomic():
                existing = Account.objects.create(
                    community=community, code=code, name=name.strip(), type=type, owner_kind=owner_kind,
                    owner_user=owner_user, currency=currency,
                )
                AccountBalance.objects.create(account=existing, guard=_guard_for(type, owner_kind))
                record_audit(actor=None, action="ledger.account_created", obj=existing, community=community,
                             changes={"code": code, "type": type, "owner_kind": owner_kind, "currency": currency})
            return existing
        except IntegrityError:
            existing = Account.objects.filter(community=community, code=code, currency=currency).first()
            if existing is None:
                raise
    if existing.type != type or existing.owner_kind != owner_kind or (
        owner_user is not None and existing.owner_user_id != owner_user.pk
    ):
        raise Conflict(
            _("Account %(code)s already exists as %(type)s owned by %(owner)s.") % {
                "code": code, "type": existing.type, "owner": existing.owner_kind},
            code="account_exists_differently",
        )
    return existing


def _guard_for(type: str, owner_kind: str) -> int:
    # Pools and escrows hold money for others: the database refuses to let them hand out
    # more than they hold (their credit balance may never turn into a debit one).
    if owner_kind in ("pool", "escrow"):
        return -1
    return 0


def member_account(*, community, user, currency: str | None = None) -> Account:
    return ensure_account(community=community, code=f"member:{user.pk}", name=user.name, type="liability",
                          owner_kind="member", owner_user=user, currency=currency)


def standard_account(*, community, key: str, currency: str | None = None) -> Account:
    if key not in STANDARD_ACCOUNTS:
        raise InvalidInput(_("Unknown standard account."), field_errors={"key": [", ".join(STANDARD_ACCOUNTS)]})
    name, type, owner = STANDARD_ACCOUNTS[key]
    return ensure_account(community=community, code=key, name=name, type=type, owner_kind=owner, currency=currency)


def create_account(*, actor, community, code: str, name: str, type: str, owner_kind: str, owner_user=None,
                   currency: str | None = None) -> Account:
    """The API/UI door to ensure_account: committee and up."""
    permissions.require(actor, "manage", community)
    if owner_kind == "member" and owner_user is not None and not Membership.objects.filter(
            community=community, user=owner_user).exists():
        raise InvalidInput(_("The account was not created."),
                           field_errors={"owner_user": [_("This person is not a member of the community.")]})
    return ensure_account(community=community, code=code, name=name, type=type, owner_kind=owner_kind,
                          owner_user=owner_user, currency=currency)


# --- posting -------------------------------------------------------------------------------------

def canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def chain_hash(*, community_id: int, seq: int, prev_hash: str, idempotency_key: str, kind: str, memo: str,
               reference: dict, actor_id: int | None, reverses_id: int | None, created_at: datetime,
               postings: Iterable[tuple[int, str, int]]) -> str:
    """SHA-256 of a transaction's canonical content and its predecessor's hash."""
    body = canonical_json({
        "community": community_id, "seq": seq, "prev": prev_hash, "key": idempotency_key, "kind": kind,
        "memo": memo, "reference": reference, "actor": actor_id, "reverses": reverses_id,
        "at": canonical_time(created_at), "postings": sorted([list(p) for p in postings]),
    })
    return hashlib.sha256(body.encode()).hexdigest()


def _request_hash(*, kind: str, memo: str, reference: dict, reverses_id: int | None,
                  postings: list[tuple[int, int]]) -> str:
    body = canonical_json({"kind": kind, "memo": memo, "reference": reference, "reverses": reverses_id,
                           "postings": sorted([list(p) for p in postings])})
    return hashlib.sha256(body.encode()).hexdigest()


def _json_safe(value, depth: int = 0) -> bool:
    if depth > 5:
        return False
    if value is None or isinstance(value, bool | int | str):
        return not isinstance(value, int) or abs(value) < 2**53
    if isinstance(value, list):
        return all(_json_safe(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_safe(v, depth + 1) for k, v in value.items())
    return False


@dataclass
class _Entry:
    key: str
    memo: str
    kind: str
    reference: dict
    postings: list[tuple[Account, int]]
    reverses: Transaction | None
    request_hash: str
    occurred_at: datetime | None


def _prepare(community, entry: dict, prefix: str) -> _Entry:
    errors: dict[str, list[str]] = {}
    key = entry.get("idempotency_key")
    memo = entry.get("memo", "")
    kind = entry.get("kind", "manual")
    reference = entry.get("reference") or {}
    postings = entry.get("postings")
    reverses = entry.get("reverses")
    occurred_at = entry.get("occurred_at")
    if occurred_at is not None and (not isinstance(occurred_at, datetime) or timezone.is_naive(occurred_at)
                                    or occurred_at > timezone.now() + timedelta(minutes=5)):
        errors[f"{prefix}occurred_at"] = [_("The date of an entry is an aware time, not in the future.")]
    if not isinstance(key, str) or not (1 <= len(key) <= 200) or not key.isprintable():
        errors[f"{prefix}idempotency_key"] = [_("Give an idempotency key of 1 to 200 printable characters.")]
    if not isinstance(memo, str) or len(memo) > 500:
        errors[f"{prefix}memo"] = [_("The memo may have at most 500 characters.")]
    if not isinstance(kind, str) or not KIND_RE.match(kind):
        errors[f"{prefix}kind"] = [_("The kind is 2 to 20 lower-case letters, digits or underscores.")]
    if not isinstance(reference, dict) or not _json_safe(reference) or (reference and len(canonical_json(reference)) > 4000):
        errors[f"{prefix}reference"] = [_("The reference is a small JSON object of strings, integers and booleans.")]
    field = f"{prefix}postings"
    checked: list[tuple[Account, int]] = []
    if not isinstance(postings, list | tuple) or len(postings) < 2:
        errors[field] = [_("A transaction needs at least two postings.")]
    elif len(postings) > MAX_POSTINGS:
        errors[field] = [_("At most %(n)d postings in one transaction.") % {"n": MAX_POSTINGS}]
    else:
        sums: dict[str, int] = defaultdict(int)
        problems: list[str] = []
        for index, item in enumerate(postings):
            try:
                account, amount = item
            except (TypeError, ValueError):
                problems.append(_("Posting %(i)d is not an (account, amount) pair.") % {"i": index + 1})
                continue
            if not isinstance(account, Account):
                problems.append(_("Posting %(i)d has no account.") % {"i": index + 1})
                continue
            if account.community_id != community.pk:
                problems.append(_("Posting %(i)d: account %(code)s belongs to another community.") % {
                    "i": index + 1, "code": account.code})
                continue
            if account.currency not in EXPONENTS:
                problems.append(_("Posting %(i)d: unknown currency %(code)s.") % {"i": index + 1, "code": account.currency})
                continue
            if isinstance(amount, bool) or not isinstance(amount, int):
                problems.append(_("Posting %(i)d: amounts are whole numbers of minor units (%(cur)s has %(n)d "
                                  "decimal places); %(amount)s is not.") % {
                    "i": index + 1, "cur": account.currency, "n": EXPONENTS[account.currency], "amount": amount})
                continue
            if amount == 0:
                problems.append(_("Posting %(i)d: an amount of zero moves nothing.") % {"i": index + 1})
                continue
            if abs(amount) > MAX_AMOUNT:
                problems.append(_("Posting %(i)d: the amount is too large.") % {"i": index + 1})
                continue
            sums[account.currency] += amount
            checked.append((account, amount))
        for currency, total in sorted(sums.items()):
            if total != 0:
                problems.append(_("The postings in %(cur)s do not balance: debits exceed credits by %(diff)d.")
                                % {"cur": currency, "diff": total} if total > 0 else
                                _("The postings in %(cur)s do not balance: credits exceed debits by %(diff)d.")
                                % {"cur": currency, "diff": -total})
        if problems:
            errors[field] = problems
    if reverses is not None and not isinstance(reverses, Transaction):
        errors[f"{prefix}reverses"] = [_("Unknown transaction.")]
    if errors:
        raise InvalidInput(_("The transaction was not posted."), field_errors=errors)
    request_hash = _request_hash(kind=kind, memo=memo, reference=reference,
                                 reverses_id=reverses.pk if reverses else None,
                                 postings=[(a.pk, amount) for a, amount in checked])
    return _Entry(key=key, memo=memo, kind=kind, reference=reference, postings=checked, reverses=reverses,
                  request_hash=request_hash, occurred_at=occurred_at)


def _lock_head(community) -> ChainHead:
    ChainHead.objects.get_or_create(community=community)
    return ChainHead.objects.select_for_update().get(pk=community.pk)


def _key_reused(key: str) -> Conflict:
    return Conflict(
        _("The idempotency key %(key)s was already used for a different transaction.") % {"key": key},
        code="idempotency_key_reused", field_errors={"idempotency_key": [_("Already used with other content.")]},
    )


def post_transaction(*, community, actor, idempotency_key: str, memo: str, postings: list[tuple[Account, int]],
                     kind: str = "manual", reference: dict | None = None,
                     occurred_at: datetime | None = None) -> Transaction:
    return post_transactions(community=community, actor=actor, entries=[{
        "idempotency_key": idempotency_key, "memo": memo, "postings": postings, "kind": kind,
        "reference": reference or {}, "occurred_at": occurred_at,
    }], _single=True)[0]


def post_transactions(*, community, actor, entries: list[dict], _single: bool = False) -> list[Transaction]:
    if not isinstance(entries, list | tuple) or not entries:
        raise InvalidInput(_("Nothing to post."), field_errors={"entries": [_("Give at least one transaction.")]})
    if len(entries) > MAX_BATCH:
        raise InvalidInput(_("Too many transactions at once."),
                           field_errors={"entries": [_("At most %(n)d per call.") % {"n": MAX_BATCH}]})
    prepared = [_prepare(community, entry, "" if _single else f"entries.{index}.") for index, entry in enumerate(entries)]
    with dbtx.atomic():
        head = _lock_head(community)
        keys = {p.key for p in prepared}
        existing = {t.idempotency_key: t for t in Transaction.objects.filter(community=community, idempotency_key__in=keys)}
        results: list[Transaction | _Entry] = []
        fresh: list[_Entry] = []
        seen: dict[str, _Entry] = {}
        for entry in prepared:
            found = existing.get(entry.key)
            if found is not None:
                if found.request_hash != entry.request_hash:
                    raise _key_reused(entry.key)
                results.append(found)
            elif entry.key in seen:
                if seen[entry.key].request_hash != entry.request_hash:
                    raise _key_reused(entry.key)
                results.append(seen[entry.key])
            else:
                seen[entry.key] = entry
                fresh.append(entry)
                results.append(entry)
        if not fresh:
            return [r for r in results if isinstance(r, Transaction)]
        for entry in fresh:
            if entry.reverses is not None:
                original = entry.reverses
                if original.community_id != community.pk:
                    raise InvalidInput(_("The transaction was not posted."),
                                       field_errors={"reverses": [_("Unknown transaction.")]})
                if Transaction.objects.filter(reverses=original).exists() or sum(
                        1 for e in fresh if e.reverses is not None and e.reverses.pk == original.pk) > 1:
                    raise Conflict(_("Transaction #%(seq)d was already reversed.") % {"seq": original.seq},
                                   code="already_reversed")
        deltas: dict[int, int] = defaultdict(int)
        counts: dict[int, int] = defaultdict(int)
        accounts: dict[int, Account] = {}
        for entry in fresh:
            for account, amount in entry.postings:
                deltas[account.pk] += amount
                counts[account.pk] += 1
                accounts[account.pk] = account
        balances = list(AccountBalance.objects.select_for_update().filter(account_id__in=list(deltas))
                        .order_by("account_id"))
        if len(balances) != len(deltas):
            missing = set(deltas) - {b.account_id for b in balances}
            for account_id in sorted(missing):
                account = accounts[account_id]
                AccountBalance.objects.get_or_create(account=account,
                                                     defaults={"guard": _guard_for(account.type, account.owner_kind)})
            balances = list(AccountBalance.objects.select_for_update().filter(account_id__in=list(deltas))
                            .order_by("account_id"))
        for kept in balances:
            after = kept.balance + deltas[kept.account_id]
            if (kept.guard == -1 and after > 0) or (kept.guard == 1 and after < 0):
                account = accounts[kept.account_id]
                raise InvalidInput(
                    _("%(name)s holds %(held)d; it cannot pay out %(asked)d.") % {
                        "name": account.name, "held": abs(kept.balance), "asked": abs(deltas[kept.account_id])},
                    code="insufficient_funds", field_errors={"postings": [_("Not enough money in %(name)s.") % {
                        "name": account.name}]},
                )
        now = timezone.now()
        actor_id = actor.pk if getattr(actor, "is_authenticated", False) else None
        seq, prev = head.seq, head.hash
        rows: list[Transaction] = []
        for entry in fresh:
            seq += 1
            reverses_id = entry.reverses.pk if entry.reverses else None
            at = entry.occurred_at or now
            digest = chain_hash(
                community_id=community.pk, seq=seq, prev_hash=prev, idempotency_key=entry.key, kind=entry.kind,
                memo=entry.memo, reference=entry.reference, actor_id=actor_id, reverses_id=reverses_id,
                created_at=at, postings=[(a.pk, a.currency, amount) for a, amount in entry.postings],
            )
            rows.append(Transaction(
                community_id=community.pk, seq=seq, idempotency_key=entry.key, request_hash=entry.request_hash,
                kind=entry.kind, memo=entry.memo, reference=entry.reference, actor_id=actor_id,
                reverses_id=reverses_id, created_at=at, prev_hash=prev, hash=digest,
            ))
            prev = digest
        _insert_rows(community, rows, fresh)
        for account_id in sorted(deltas):
            AccountBalance.objects.filter(account_id=account_id).update(
                balance=F("balance") + deltas[account_id], postings=F("postings") + counts[account_id])
        ChainHead.objects.filter(pk=community.pk).update(seq=seq, hash=prev)
        by_key = {row.idempotency_key: row for row in rows}
        ids = [row.pk for row in rows]
        record_audit(actor=actor, action="ledger.transaction_posted", obj=rows[0], community=community,
                     changes={"transaction_ids": ids[:1000], "count": len(rows), "kinds": sorted({r.kind for r in rows})})
        payload = {"transaction_ids": ids, "count": len(rows)}
        if len(rows) == 1:
            payload.update({"transaction_id": rows[0].pk, "seq": rows[0].seq, "kind": rows[0].kind,
                            "memo": rows[0].memo})
        publish_event(name="ledger.transaction_posted", community=community, payload=payload)
    return [r if isinstance(r, Transaction) else by_key[r.key] for r in results]


def _insert_rows(community, rows: list[Transaction], fresh: list[_Entry], chunk: int = 500) -> None:
    """Multi-row INSERTs for transactions and postings: the ORM's bulk_create spends most of a
    batch preparing values field by field; the append-only tables need nothing but plain rows."""
    connection = dbtx.get_connection()
    ref_field = Transaction._meta.get_field("reference")
    json_cast = "::jsonb" if connection.vendor == "postgresql" else ""
    tx_sql = ("INSERT INTO ledger_transaction (community_id, seq, idempotency_key, request_hash, kind, memo, reference, "
              "actor_id, reverses_id, created_at, prev_hash, hash) VALUES ")
    one_tx = f"(%s,%s,%s,%s,%s,%s,%s{json_cast},%s,%s,%s,%s,%s)"
    with connection.cursor() as cursor:
        for start in range(0, len(rows), chunk):
            part = rows[start:start + chunk]
            params: list = []
            for row in part:
                params += [community.pk, row.seq, row.idempotency_key, row.request_hash, row.kind, row.memo,
                           ref_field.get_db_prep_save(row.reference, connection), row.actor_id, row.reverses_id,
                           connection.ops.adapt_datetimefield_value(row.created_at), row.prev_hash, row.hash]
            cursor.execute(tx_sql + ",".join([one_tx] * len(part)), params)
        cursor.execute("SELECT seq, id FROM ledger_transaction WHERE community_id = %s AND seq >= %s AND seq <= %s",
                       [community.pk, rows[0].seq, rows[-1].seq])
        ids = dict(cursor.fetchall())
        for row in rows:
            row.pk = row.id = ids[row.seq]
            row._state.adding = False
            row._state.db = connection.alias
        postings = [(row.pk, account.pk, amount, account.currency)
                    for row, entry in zip(rows, fresh, strict=True) for account, amount in entry.postings]
        for start in range(0, len(postings), chunk * 2):
            part = postings[start:start + chunk * 2]
            cursor.execute("INSERT INTO ledger_posting (transaction_id, account_id, amount, currency) VALUES "
                           + ",".join(["(%s,%s,%s,%s)"] * len(part)), [value for item in part for value in item])


def reverse_transaction(*, actor, transaction: Transaction, idempotency_key: str, memo: str = "") -> Transaction:
    if transaction.kind == "reversal" or transaction.reverses_id is not None:
        raise Conflict(_("A reversal is not reversed; post the entry again instead."), code="reversal_of_reversal")
    postings = [(p.account, -p.amount) for p in transaction.postings.select_related("account").order_by("pk")]
    entry = {
        "idempotency_key": idempotency_key, "memo": memo or _("Reversal of #%(seq)d") % {"seq": transaction.seq},
        "postings": postings, "kind": "reversal", "reference": {"reverses_seq": transaction.seq},
        "reverses": transaction,
    }
    return post_transactions(community=transaction.community, actor=actor, entries=[entry], _single=True)[0]


def post_manual_transaction(*, actor, community, idempotency_key: str, memo: str, postings: list[tuple[Account, int]],
                            reference: dict | None = None) -> Transaction:
    """The API/UI door for hand-made entries: committee and up."""
    permissions.require(actor, "manage", community)
    return post_transaction(community=community, actor=actor, idempotency_key=idempotency_key, memo=memo,
                            postings=postings, kind="manual", reference=reference)


def reverse_manually(*, actor, transaction: Transaction, idempotency_key: str, memo: str = "") -> Transaction:
    permissions.require(actor, "manage", transaction.community)
    return reverse_transaction(actor=actor, transaction=transaction, idempotency_key=idempotency_key, memo=memo)


# --- settings ------------------------------------------------------------------------------------

def settings_for(community) -> LedgerSettings:
    found = LedgerSettings.objects.filter(community=community).first()
    if found is None:
        try:
            with dbtx.atomic():
                found = LedgerSettings.objects.create(community=community)
        except IntegrityError:
            found = LedgerSettings.objects.get(community=community)
    return found


def update_ledger_settings(*, actor, community, platform_cap_bp: int | None = None, public_totals: bool | None = None,
                           escrow_timeout_days: int | None = None) -> LedgerSettings:
    permissions.require(actor, "configure", community)
    errors: dict[str, list[str]] = {}
    if platform_cap_bp is not None and (isinstance(platform_cap_bp, bool) or not isinstance(platform_cap_bp, int)
                                        or not 0 <= platform_cap_bp <= 10000):
        errors["platform_cap_bp"] = [_("Between 0 and 10000 basis points (0 to 100 %).")]
    if escrow_timeout_days is not None and not (1 <= int(escrow_timeout_days) <= 365):
        errors["escrow_timeout_days"] = [_("Between 1 and 365 days.")]
    if not errors and platform_cap_bp is not None:
        over = [rule.name for rule in active_rules(community) if _platform_bp(rule.current) > platform_cap_bp]
        if over:
            errors["platform_cap_bp"] = [_("Rules in force give the platform more than that: %(rules)s. Revise them "
                                           "first.") % {"rules": ", ".join(over)}]
    if errors:
        raise InvalidInput(_("The ledger settings were not changed."), field_errors=errors)
    with dbtx.atomic():
        current = settings_for(community)
        locked = LedgerSettings.objects.select_for_update().get(pk=current.pk)
        changes = {}
        for field, value in (("platform_cap_bp", platform_cap_bp), ("public_totals", public_totals),
                             ("escrow_timeout_days", escrow_timeout_days)):
            if value is not None and getattr(locked, field) != value:
                changes[field] = [getattr(locked, field), value]
                setattr(locked, field, value)
        if changes:
            locked.save(update_fields=list(changes))
            record_audit(actor=actor, action="ledger.settings_changed", obj=locked, community=community, changes=changes)
            publish_event(name="ledger.settings_changed", community=community, payload={"fields": sorted(changes)})
    return locked


# --- splits --------------------------------------------------------------------------------------

def active_rules(community):
    return SplitRule.objects.filter(community=community, retired_at__isnull=True).order_by("name")


def _platform_bp(version: SplitRuleVersion | None) -> int:
    if version is None:
        return 0
    return sum(share.basis_points or 0 for share in version.shares.select_related("account")
               if share.account.owner_kind == "platform")


def _validate_shares(*, community, currency: str, shares, remainder: str, remainder_account) -> list[dict]:
    errors: dict[str, list[str]] = {}
    cleaned: list[dict] = []
    cap = settings_for(community).platform_cap_bp
    if remainder not in ("largest_remainder", "to_account"):
        errors["remainder"] = [_("Choose largest_remainder or to_account.")]
    if not isinstance(shares, list | tuple) or not shares:
        errors["shares"] = [_("Give at least one share.")]
        shares = []
    seen: set[int] = set()
    total_bp = 0
    platform_bp = 0
    for index, share in enumerate(shares):
        field = f"shares.{index}"
        account = share.get("account") if isinstance(share, dict) else None
        bp = share.get("basis_points") if isinstance(share, dict) else None
        fixed = share.get("fixed_amount") if isinstance(share, dict) else None
        if not isinstance(account, Account) or account.community_id != community.pk:
            errors[field] = [_("Unknown account.")]
            continue
        if account.currency != currency:
            errors[field] = [_("The account is in %(a)s, the rule in %(b)s.") % {"a": account.currency, "b": currency}]
            continue
        if account.pk in seen:
            errors[field] = [_("An account may appear once in a rule.")]
            continue
        seen.add(account.pk)
        if (bp is None) == (fixed is None):
            errors[field] = [_("Give either basis points or a fixed amount.")]
            continue
        if bp is not None:
            if isinstance(bp, bool) or not isinstance(bp, int) or not 1 <= bp <= 10000:
                errors[field] = [_("Basis points are whole numbers from 1 to 10000 (100 %).")]
                continue
            total_bp += bp
            if account.owner_kind == "platform":
                platform_bp += bp
        else:
            if isinstance(fixed, bool) or not isinstance(fixed, int) or not 1 <= fixed <= MAX_AMOUNT:
                errors[field] = [_("A fixed amount is a positive whole number of minor units.")]
                continue
            if account.owner_kind == "platform":
                errors[field] = [_("The platform may take basis points only, so that the cap can hold.")]
                continue
        cleaned.append({"account": account, "basis_points": bp, "fixed_amount": fixed})
    if remainder == "largest_remainder" and not errors and total_bp != 10000:
        errors["shares"] = [_("The shares add up to %(pct)s %%, not 100 %%.") % {"pct": f"{total_bp / 100:g}"}]
    if remainder == "to_account":
        if total_bp > 10000:
            errors["shares"] = [_("The shares add up to %(pct)s %%, more than 100 %%.") % {"pct": f"{total_bp / 100:g}"}]
        if not isinstance(remainder_account, Account) or remainder_account.community_id != community.pk:
            errors["remainder_account"] = [_("Choose the account that receives what is left.")]
        elif remainder_account.currency != currency:
            errors["remainder_account"] = [_("The account is in another currency.")]
        elif remainder_account.owner_kind == "platform":
            errors["remainder_account"] = [_("The platform cannot take the remainder; the cap could not hold.")]
    if platform_bp > cap:
        errors.setdefault("shares", []).append(
            _("The platform would take %(got)s %%; this community caps it at %(cap)s %%.") % {
                "got": f"{platform_bp / 100:g}", "cap": f"{cap / 100:g}"})
    if errors:
        raise InvalidInput(_("The split rule was not saved."), field_errors=errors)
    return cleaned


def _write_version(*, actor, rule: SplitRule, number: int, cleaned: list[dict], remainder: str, remainder_account,
                   note: str) -> SplitRuleVersion:
    version = SplitRuleVersion.objects.create(
        rule=rule, number=number, remainder=remainder,
        remainder_account=remainder_account if remainder == "to_account" else None,
        created_by=actor if getattr(actor, "is_authenticated", False) else None, note=(note or "")[:300],
    )
    SplitShare.objects.bulk_create([
        SplitShare(version=version, position=index, account=share["account"], basis_points=share["basis_points"],
                   fixed_amount=share["fixed_amount"])
        for index, share in enumerate(cleaned)
    ])
    return version


def _describe(cleaned: list[dict], remainder: str, remainder_account) -> dict:
    return {"shares": [{"account": s["account"].code, "basis_points": s["basis_points"],
                        "fixed_amount": s["fixed_amount"]} for s in cleaned],
            "remainder": remainder, "remainder_account": remainder_account.code if remainder_account else None}


def create_split_rule(*, actor, community, name: str, shares, remainder: str = "largest_remainder",
                      remainder_account=None, currency: str | None = None, note: str = "") -> SplitRule:
    permissions.require(actor, "manage", community)
    currency = currency or community.currency
    name = (name or "").strip()
    errors: dict[str, list[str]] = {}
    if not 1 <= len(name) <= 120:
        errors["name"] = [_("Give a name of 1 to 120 characters.")]
    elif SplitRule.objects.filter(community=community, name=name).exists():
        errors["name"] = [_("A rule with this name exists; revise it instead.")]
    if currency not in EXPONENTS:
        errors["currency"] = [_("Unknown currency %(code)s.") % {"code": currency}]
    if errors:
        raise InvalidInput(_("The split rule was not saved."), field_errors=errors)
    cleaned = _validate_shares(community=community, currency=currency, shares=shares, remainder=remainder,
                               remainder_account=remainder_account)
    try:
        with dbtx.atomic():
            rule = SplitRule.objects.create(community=community, name=name, currency=currency)
            _write_version(actor=actor, rule=rule, number=1, cleaned=cleaned, remainder=remainder,
                           remainder_account=remainder_account, note=note)
            record_audit(actor=actor, action="ledger.split_rule_created", obj=rule, community=community,
                         changes={"name": name, **_describe(cleaned, remainder, remainder_account)})
            publish_event(name="ledger.split_rule_changed", community=community, payload={"rule_id": rule.pk, "version": 1})
    except IntegrityError as exc:
        raise InvalidInput(_("The split rule was not saved."),
                           field_errors={"name": [_("A rule with this name exists; revise it instead.")]}) from exc
    return rule


def revise_split_rule(*, actor, rule: SplitRule, shares, remainder: str = "largest_remainder", remainder_account=None,
                      note: str = "") -> SplitRuleVersion:
    community = rule.community
    permissions.require(actor, "manage", community)
    if rule.retired_at is not None:
        raise Conflict(_("This rule was retired."), code="rule_retired")
    cleaned = _validate_shares(community=community, currency=rule.currency, shares=shares, remainder=remainder,
                               remainder_account=remainder_account)
    with dbtx.atomic():
        locked = SplitRule.objects.select_for_update().get(pk=rule.pk)
        number = (locked.versions.order_by("-number").values_list("number", flat=True).first() or 0) + 1
        version = _write_version(actor=actor, rule=locked, number=number, cleaned=cleaned, remainder=remainder,
                                 remainder_account=remainder_account, note=note)
        record_audit(actor=actor, action="ledger.split_rule_revised", obj=locked, community=community,
                     changes={"version": number, **_describe(cleaned, remainder, remainder_account)})
        publish_event(name="ledger.split_rule_changed", community=community,
                      payload={"rule_id": locked.pk, "version": number})
    return version


def retire_split_rule(*, actor, rule: SplitRule) -> SplitRule:
    permissions.require(actor, "manage", rule.community)
    with dbtx.atomic():
        locked = SplitRule.objects.select_for_update().get(pk=rule.pk)
        if locked.retired_at is None:
            locked.retired_at = timezone.now()
            locked.save(update_fields=["retired_at"])
            record_audit(actor=actor, action="ledger.split_rule_retired", obj=locked, community=locked.community)
            publish_event(name="ledger.split_rule_changed", community=locked.community,
                          payload={"rule_id": locked.pk, "retired": True})
    return locked


def largest_remainder(total: int, weights: list[int]) -> list[int]:
    """Divide `total` in proportion to non-negative `weights`, exactly; ties go to the earlier weight."""
    whole = sum(weights)
    if whole <= 0:
        raise InvalidInput(_("Nothing to divide by."), field_errors={"weights": [_("The weights add up to zero.")]})
    floors = [total * w // whole for w in weights]
    rests = [total * w % whole for w in weights]
    left = total - sum(floors)
    for index in sorted(range(len(weights)), key=lambda i: (-rests[i], i))[:left]:
        floors[index] += 1
    return floors


def allocate(amount: int, rule) -> list[tuple[Account, int]]:
    version = rule.current if isinstance(rule, SplitRule) else rule
    if not isinstance(version, SplitRuleVersion):
        raise InvalidInput(_("Unknown split rule."), field_errors={"rule": [_("Unknown split rule.")]})
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidInput(_("The amount is a whole number of minor units."),
                           field_errors={"amount": [_("The amount is a whole number of minor units.")]})
    if amount < 0 or amount > MAX_AMOUNT:
        raise InvalidInput(_("The amount to split may not be negative."),
                           field_errors={"amount": [_("Give an amount from 0 up.")]})
    shares = list(version.shares.select_related("account").order_by("position"))
    fixed_total = sum(s.fixed_amount or 0 for s in shares)
    if fixed_total > amount:
        raise InvalidInput(
            _("The fixed shares (%(fixed)d) exceed the amount (%(amount)d).") % {"fixed": fixed_total, "amount": amount},
            field_errors={"amount": [_("Too small for this rule's fixed shares.")]})
    rest = amount - fixed_total
    parts = {s.pk: s.fixed_amount or 0 for s in shares}
    percent = [s for s in shares if s.basis_points]
    if version.remainder == "largest_remainder":
        if percent:
            for share, part in zip(percent, largest_remainder(rest, [s.basis_points for s in percent]), strict=True):
                parts[share.pk] += part
    else:
        for share in percent:
            parts[share.pk] += rest * share.basis_points // 10000
    result: list[tuple[Account, int]] = [(s.account, parts[s.pk]) for s in shares]
    left = amount - sum(part for _account, part in result)
    if left:
        target = version.remainder_account
        for index, (account, part) in enumerate(result):
            if account.pk == target.pk:
                result[index] = (account, part + left)
                break
        else:
            result.append((target, left))
    return [(account, part) for account, part in result if part]


def split_income(*, community, actor, idempotency_key: str, memo: str, rule, amount: int, debit_account=None,
                 kind: str = "split", reference: dict | None = None, occurred_at: datetime | None = None) -> Transaction:
    version = rule.current if isinstance(rule, SplitRule) else rule
    if version is None or version.rule.community_id != community.pk or version.rule.retired_at is not None:
        raise InvalidInput(_("Unknown split rule."), field_errors={"rule": [_("No such rule in force.")]})
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise InvalidInput(_("The amount must be a positive whole number of minor units."),
                           field_errors={"amount": [_("Give a positive whole amount.")]})
    debit_account = debit_account or standard_account(community=community, key="cash", currency=version.rule.currency)
    parts = allocate(amount, version)
    return post_transaction(
        community=community, actor=actor, idempotency_key=idempotency_key, memo=memo, kind=kind,
        postings=[(debit_account, amount), *[(account, -part) for account, part in parts]],
        reference={**(reference or {}), "split_rule": version.rule_id, "split_version": version.number},
        occurred_at=occurred_at,
    )


def record_income(*, actor, community, rule: SplitRule, amount: int, idempotency_key: str, memo: str) -> Transaction:
    """The API/UI door for income received and split by a rule: committee and up."""
    permissions.require(actor, "manage", community)
    return split_income(community=community, actor=actor, idempotency_key=idempotency_key, memo=memo, rule=rule,
                        amount=amount)


# --- settlement ----------------------------------------------------------------------------------

def parse_period(text: str) -> tuple[date, date]:
    """"2026-03" → March 2026; "2026" → the year; "2026-03-01..2026-03-16" → those days (end exclusive)."""
    text = (text or "").strip()
    try:
        if ".." in text:
            start_text, end_text = text.split("..", 1)
            start, end = date.fromisoformat(start_text), date.fromisoformat(end_text)
        elif re.fullmatch(r"\d{4}-\d{2}", text):
            year, month = map(int, text.split("-"))
            start = date(year, month, 1)
            end = date(year + (month == 12), month % 12 + 1, 1)
        elif re.fullmatch(r"\d{4}", text):
            start, end = date(int(text), 1, 1), date(int(text) + 1, 1, 1)
        else:
            raise ValueError(text)
    except ValueError:
        raise InvalidInput(_("Unknown period."), field_errors={"period": [
            _("Give a month (2026-03), a year (2026) or days (2026-03-01..2026-03-16).")]}) from None
    if end <= start:
        raise InvalidInput(_("Unknown period."), field_errors={"period": [_("The period ends before it starts.")]})
    return start, end


def period_bounds(community, start: date, end: date) -> tuple[datetime, datetime]:
    zone = ZoneInfo(community.time_zone)
    return (datetime.combine(start, datetime.min.time(), zone), datetime.combine(end, datetime.min.time(), zone))


ProgressCallback = Callable[[int, int], None]


def settle(*, actor, community, period_start: date, period_end: date, currency: str | None = None,
           progress: ProgressCallback | None = None, chunk: int = 50) -> Settlement:
    """Statements and payouts for what members earned in [period_start, period_end).

    Runs in chunks that each commit (so progress events reach browsers while it runs, and a
    crash resumes where it stopped); running a settled period again writes nothing.
    """
    permissions.require(actor, "manage", community)
    currency = currency or community.currency
    errors: dict[str, list[str]] = {}
    if currency not in EXPONENTS:
        errors["currency"] = [_("Unknown currency %(code)s.") % {"code": currency}]
    if not isinstance(period_start, date) or not isinstance(period_end, date) or period_end <= period_start:
        errors["period"] = [_("The period ends before it starts.")]
    elif period_bounds(community, period_start, period_end)[1] > timezone.now():
        errors["period"] = [_("The period has not ended yet.")]
    if errors:
        raise InvalidInput(_("The period was not settled."), field_errors=errors)
    with dbtx.atomic():
        overlapping = Settlement.objects.filter(
            community=community, currency=currency, period_start__lt=period_end, period_end__gt=period_start,
        ).exclude(period_start=period_start, period_end=period_end).first()
        if overlapping:
            raise Conflict(_("This period overlaps the settled period %(a)s – %(b)s.") % {
                "a": overlapping.period_start, "b": overlapping.period_end}, code="period_overlaps")
        settlement, created = Settlement.objects.get_or_create(
            community=community, currency=currency, period_start=period_start, period_end=period_end,
            defaults={"actor": actor if getattr(actor, "is_authenticated", False) else None},
        )
        if created:
            record_audit(actor=actor, action="ledger.settlement_started", obj=settlement, community=community,
                         changes={"period": [str(period_start), str(period_end)], "currency": currency})
    if settlement.status == "completed":
        return settlement
    low, high = period_bounds(community, period_start, period_end)
    member_ids = list(
        Posting.objects.filter(account__community=community, account__owner_kind="member", account__currency=currency,
                               transaction__created_at__gte=low, transaction__created_at__lt=high)
        .exclude(transaction__kind="payout").values_list("account_id", flat=True).distinct().order_by("account_id"))
    done_ids = set(settlement.statements.values_list("account_id", flat=True))
    todo = [account_id for account_id in member_ids if account_id not in done_ids]
    Settlement.objects.filter(pk=settlement.pk).update(members_total=len(member_ids))
    cash = standard_account(community=community, key="cash", currency=currency)
    done = len(done_ids)
    for start in range(0, len(todo), chunk):
        batch = todo[start:start + chunk]
        with dbtx.atomic():
            _settle_chunk(actor=actor, community=community, settlement=settlement, account_ids=batch, low=low,
                          high=high, cash=cash)
            done += len(batch)
            Settlement.objects.filter(pk=settlement.pk).update(members_done=done)
            publish_event(name="ledger.settlement_progress", community=community,
                          payload={"settlement_id": settlement.pk, "done": done, "total": len(member_ids)})
        if progress:
            progress(done, len(member_ids))
    with dbtx.atomic():
        locked = Settlement.objects.select_for_update().get(pk=settlement.pk)
        if locked.status == "completed":
            return locked
        totals = locked.statements.aggregate(earned=Sum("earned"), paid=Sum("paid"))
        locked.total_earned = totals["earned"] or 0
        locked.total_paid = totals["paid"] or 0
        locked.members_total = len(member_ids)
        locked.members_done = len(member_ids)
        locked.status = "completed"
        locked.completed_at = timezone.now()
        locked.save()
        record_audit(actor=actor, action="ledger.settlement_completed", obj=locked, community=community,
                     changes={"earned": locked.total_earned, "paid": locked.total_paid, "members": len(member_ids)})
        publish_event(name="ledger.settlement_completed", community=community, payload={
            "settlement_id": locked.pk, "period_start": str(period_start), "period_end": str(period_end),
            "currency": currency, "total_earned": locked.total_earned, "total_paid": locked.total_paid,
            "members": len(member_ids)})
    if progress and not member_ids:
        progress(0, 0)
    return locked


def _settle_chunk(*, actor, community, settlement: Settlement, account_ids: list[int], low, high, cash: Account) -> None:
    accounts = {a.pk: a for a in Account.objects.filter(pk__in=account_ids).select_related("owner_user", "kept_balance")}
    lines_by_account: dict[int, list[Posting]] = defaultdict(list)
    for posting in (Posting.objects.filter(account_id__in=account_ids, transaction__created_at__gte=low,
                                           transaction__created_at__lt=high)
                    .exclude(transaction__kind="payout").select_related("transaction").order_by("transaction__seq", "pk")):
        lines_by_account[posting.account_id].append(posting)
    entries = []
    plan = []
    for account_id in account_ids:
        account = accounts[account_id]
        earned = -sum(p.amount for p in lines_by_account[account_id])
        owed = -account.kept_balance.balance
        paid = max(0, min(earned, owed))
        plan.append((account, earned, paid))
        if paid:
            entries.append({
                "idempotency_key": f"settlement:{settlement.pk}:account:{account_id}", "kind": "payout",
                "memo": _("Payout %(start)s – %(end)s to %(name)s") % {
                    "start": settlement.period_start, "end": settlement.period_end, "name": account.name},
                "postings": [(account, paid), (cash, -paid)],
                "reference": {"settlement": settlement.pk},
            })
    payouts = {}
    if entries:
        for tx in post_transactions(community=community, actor=actor, entries=entries):
            payouts[tx.idempotency_key] = tx
    for account, earned, paid in plan:
        statement = Statement.objects.create(
            settlement=settlement, member=account.owner_user, account=account, earned=earned, paid=paid,
            payout=payouts.get(f"settlement:{settlement.pk}:account:{account.pk}"),
        )
        StatementLine.objects.bulk_create([
            StatementLine(statement=statement, transaction=p.transaction, posted_at=p.transaction.created_at,
                          memo=p.transaction.memo, amount=-p.amount)
            for p in lines_by_account[account.pk]
        ])


# --- escrow --------------------------------------------------------------------------------------

def _is_member(user, community) -> bool:
    return user is not None and Membership.objects.filter(community=community, user=user).exists()


def open_escrow(*, actor, community, seller, moderator, amount: int, idempotency_key: str, memo: str = "",
                currency: str | None = None, timeout_days: int | None = None) -> Escrow:
    """The buyer (actor) pays `amount` into escrow; two of buyer, seller and moderator decide where it goes."""
    permissions.require(actor, "participate", community)
    currency = currency or community.currency
    errors: dict[str, list[str]] = {}
    if seller is None or not _is_member(seller, community):
        errors["seller"] = [_("The seller must be a member of the community.")]
    elif seller.pk == actor.pk:
        errors["seller"] = [_("You cannot buy from yourself.")]
    if moderator is None or not permissions.can(moderator, "manage", community):
        errors["moderator"] = [_("The moderator must be on the committee.")]
    elif moderator.pk in (actor.pk, getattr(seller, "pk", None)):
        errors["moderator"] = [_("The moderator must be neither buyer nor seller.")]
    if isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= MAX_AMOUNT:
        errors["amount"] = [_("Give a positive whole amount in minor units.")]
    if currency not in EXPONENTS:
        errors["currency"] = [_("Unknown currency %(code)s.") % {"code": currency}]
    if timeout_days is not None and (isinstance(timeout_days, bool) or not isinstance(timeout_days, int)
                                     or not 1 <= timeout_days <= 365):
        errors["timeout_days"] = [_("Between 1 and 365 days.")]
    if not isinstance(idempotency_key, str) or not 1 <= len(idempotency_key) <= 180:
        errors["idempotency_key"] = [_("Give an idempotency key of 1 to 180 characters.")]
    if len(memo or "") > 500:
        errors["memo"] = [_("The memo may have at most 500 characters.")]
    if errors:
        raise InvalidInput(_("The escrow was not opened."), field_errors=errors)
    key = f"escrow:{idempotency_key}"
    days = timeout_days or settings_for(community).escrow_timeout_days
    with dbtx.atomic():
        found = Escrow.objects.filter(community=community, funding__idempotency_key=key).first()
        if found is not None:
            if (found.buyer_id, found.seller_id, found.moderator_id, found.amount, found.currency) != (
                    actor.pk, seller.pk, moderator.pk, amount, currency):
                raise _key_reused(idempotency_key)
            return found
        account = ensure_account(community=community, code=f"escrow:{secrets.token_hex(6)}",
                                 name=_("Escrow: %(memo)s") % {"memo": (memo or idempotency_key)[:100]},
                                 type="liability", owner_kind="escrow", currency=currency)
        cash = standard_account(community=community, key="cash", currency=currency)
        funding = post_transaction(community=community, actor=actor, idempotency_key=key, kind="escrow",
                                   memo=memo or _("Payment held in escrow"),
                                   postings=[(cash, amount), (account, -amount)],
                                   reference={"escrow_account": account.code, "seller": seller.pk})
        escrow = Escrow.objects.create(
            community=community, buyer=actor, seller=seller, moderator=moderator, account=account, amount=amount,
            currency=currency, memo=memo or "", timeout_at=timezone.now() + timedelta(days=days), funding=funding,
        )
        record_audit(actor=actor, action="ledger.escrow_opened", obj=escrow, community=community,
                     changes={"amount": amount, "currency": currency, "seller": seller.pk, "moderator": moderator.pk})
        publish_event(name="ledger.escrow_opened", community=community, payload={"escrow_id": escrow.pk})
    return escrow


def _party_role(escrow: Escrow, user) -> str | None:
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    for role in ("buyer", "seller", "moderator"):
        if getattr(escrow, f"{role}_id") == user.pk:
            return role
    return None


def _resolve(*, actor, escrow: Escrow, decision: str, how: str) -> Escrow:
    receiver = escrow.seller if decision == "release" else escrow.buyer
    target = member_account(community=escrow.community, user=receiver, currency=escrow.currency)
    tx = post_transaction(
        community=escrow.community, actor=actor, idempotency_key=f"escrow-resolution:{escrow.pk}", kind="escrow",
        memo=(_("Escrow released to %(name)s") if decision == "release" else _("Escrow refunded to %(name)s"))
        % {"name": receiver.name},
        postings=[(escrow.account, escrow.amount), (target, -escrow.amount)],
        reference={"escrow": escrow.pk, "decision": decision, "how": how},
    )
    escrow.status = "released" if decision == "release" else "refunded"
    escrow.resolution = tx
    escrow.resolved_at = timezone.now()
    escrow.save(update_fields=["status", "resolution", "resolved_at"])
    record_audit(actor=actor, action=f"ledger.escrow_{escrow.status}", obj=escrow, community=escrow.community,
                 changes={"how": how, "transaction": tx.pk})
    publish_event(name="ledger.escrow_resolved", community=escrow.community,
                  payload={"escrow_id": escrow.pk, "status": escrow.status, "how": how})
    return escrow


def approve_escrow(*, actor, escrow: Escrow, decision: str) -> Escrow:
    role = _party_role(escrow, actor)
    if role is None:
        raise PermissionDenied(_("Only the buyer, the seller or the moderator may decide on this escrow."),
                               code="not_a_party")
    if decision not in ("release", "refund"):
        raise InvalidInput(_("Choose release or refund."), field_errors={"decision": [_("Choose release or refund.")]})
    with dbtx.atomic():
        locked = Escrow.objects.select_for_update(of=("self",)).select_related("community", "account").get(pk=escrow.pk)
        if locked.status != "held":
            raise Conflict(_("This escrow is already settled (%(status)s).") % {"status": locked.get_status_display()},
                           code="escrow_settled")
        previous = locked.approvals.filter(party=actor).first()
        if previous is not None:
            if previous.decision == decision:
                return locked
            raise Conflict(_("You already chose %(decision)s.") % {"decision": previous.decision}, code="already_decided")
        EscrowApproval.objects.create(escrow=locked, party=actor, role=role, decision=decision)
        record_audit(actor=actor, action="ledger.escrow_approval", obj=locked, community=locked.community,
                     changes={"role": role, "decision": decision})
        publish_event(name="ledger.escrow_approval", community=locked.community,
                      payload={"escrow_id": locked.pk, "role": role, "decision": decision})
        if locked.approvals.filter(decision=decision).count() >= 2:
            _resolve(actor=actor, escrow=locked, decision=decision, how="two_of_three")
    return locked


def dispute_escrow(*, actor, escrow: Escrow, reason: str) -> Escrow:
    role = _party_role(escrow, actor)
    if role not in ("buyer", "moderator"):
        raise PermissionDenied(_("Only the buyer or the moderator may dispute this escrow."), code="not_a_party")
    reason = (reason or "").strip()
    if not 1 <= len(reason) <= 500:
        raise InvalidInput(_("Say why, in 1 to 500 characters."), field_errors={"reason": [_("Say why.")]})
    with dbtx.atomic():
        locked = Escrow.objects.select_for_update(of=("self",)).select_related("community").get(pk=escrow.pk)
        if locked.status != "held":
            raise Conflict(_("This escrow is already settled."), code="escrow_settled")
        if locked.disputed_at is None:
            locked.disputed_at = timezone.now()
            locked.dispute_reason = reason
            locked.save(update_fields=["disputed_at", "dispute_reason"])
            record_audit(actor=actor, action="ledger.escrow_disputed", obj=locked, community=locked.community,
                         changes={"role": role, "reason": reason})
            publish_event(name="ledger.escrow_disputed", community=locked.community, payload={"escrow_id": locked.pk})
    return locked


def release_after_timeout(*, actor, escrow: Escrow, now: datetime | None = None) -> Escrow:
    """The seller (or the periodic job, actor None) releases alone once the timeout passed undisputed."""
    if actor is not None and _party_role(escrow, actor) != "seller":
        raise PermissionDenied(_("Only the seller may release alone after the timeout."), code="not_the_seller")
    now = now or timezone.now()
    with dbtx.atomic():
        locked = Escrow.objects.select_for_update(of=("self",)).select_related("community", "account").get(pk=escrow.pk)
        if locked.status != "held":
            raise Conflict(_("This escrow is already settled."), code="escrow_settled")
        if locked.disputed_at is not None:
            raise Conflict(_("The escrow is disputed; two of the three parties must decide."), code="escrow_disputed")
        if now < locked.timeout_at:
            raise Conflict(_("The seller may release alone from %(when)s.") % {"when": locked.timeout_at.isoformat()},
                           code="escrow_not_due")
        return _resolve(actor=actor, escrow=locked, decision="release", how="timeout")


# --- mutual-aid pools ----------------------------------------------------------------------------

EVIDENCE_TYPES = {".pdf": (b"%PDF-",), ".png": (b"\x89PNG\r\n\x1a\n",), ".jpg": (b"\xff\xd8\xff",),
                  ".jpeg": (b"\xff\xd8\xff",)}
MAX_EVIDENCE_BYTES = 5 * 1024 * 1024


def pool_funds(pool: Pool) -> int:
    return -AccountBalance.objects.get(account_id=pool.account_id).balance


def create_pool(*, actor, community, name: str, contribution_amount: int, claim_rule: str, year_end_rule: str,
                currency: str | None = None) -> Pool:
    permissions.require(actor, "manage", community)
    currency = currency or community.currency
    name = (name or "").strip()
    errors: dict[str, list[str]] = {}
    if not 1 <= len(name) <= 120:
        errors["name"] = [_("Give a name of 1 to 120 characters.")]
    elif Pool.objects.filter(community=community, name=name).exists():
        errors["name"] = [_("A pool with this name exists.")]
    if isinstance(contribution_amount, bool) or not isinstance(contribution_amount, int) or not (
            1 <= contribution_amount <= MAX_AMOUNT):
        errors["contribution_amount"] = [_("Give a positive whole amount in minor units.")]
    if claim_rule not in Pool.ClaimRule.values:
        errors["claim_rule"] = [_("Choose queue or partial.")]
    if year_end_rule not in Pool.YearEndRule.values:
        errors["year_end_rule"] = [_("Choose refund or carry_over.")]
    if currency not in EXPONENTS:
        errors["currency"] = [_("Unknown currency %(code)s.") % {"code": currency}]
    if errors:
        raise InvalidInput(_("The pool was not created."), field_errors=errors)
    with dbtx.atomic():
        account = ensure_account(community=community, code=f"pool:{secrets.token_hex(6)}",
                                 name=_("Pool: %(name)s") % {"name": name}, type="liability", owner_kind="pool",
                                 currency=currency)
        pool = Pool.objects.create(community=community, name=name, currency=currency, account=account,
                                   contribution_amount=contribution_amount, claim_rule=claim_rule,
                                   year_end_rule=year_end_rule)
        record_audit(actor=actor, action="ledger.pool_created", obj=pool, community=community, changes={
            "name": name, "contribution_amount": contribution_amount, "claim_rule": claim_rule,
            "year_end_rule": year_end_rule})
        publish_event(name="ledger.pool_created", community=community, payload={"pool_id": pool.pk})
    return pool


def join_pool(*, actor, pool: Pool) -> PoolMember:
    permissions.require(actor, "participate", pool.community)
    with dbtx.atomic():
        member, created = PoolMember.objects.get_or_create(pool=pool, user=actor)
        if created:
            record_audit(actor=actor, action="ledger.pool_joined", obj=member, community=pool.community,
                         changes={"pool": pool.pk})
            publish_event(name="ledger.pool_joined", community=pool.community,
                          payload={"pool_id": pool.pk, "user_id": actor.pk})
    return member


def contribute(*, actor, pool: Pool, month: str) -> PoolContribution:
    """The actor pays this month's scheduled contribution (from outside: cash in, pool credited)."""
    permissions.require(actor, "participate", pool.community)
    if not PoolMember.objects.filter(pool=pool, user=actor).exists():
        raise PermissionDenied(_("Join the pool first."), code="not_in_pool")
    if not isinstance(month, str) or not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        raise InvalidInput(_("Give the month as YYYY-MM."), field_errors={"month": [_("Give the month as YYYY-MM.")]})
    with dbtx.atomic():
        found = PoolContribution.objects.filter(pool=pool, user=actor, month=month).first()
        if found is not None:
            return found
        cash = standard_account(community=pool.community, key="cash", currency=pool.currency)
        tx = post_transaction(
            community=pool.community, actor=actor, idempotency_key=f"pool:{pool.pk}:contribution:{actor.pk}:{month}",
            kind="pool", memo=_("Contribution %(month)s to %(pool)s") % {"month": month, "pool": pool.name},
            postings=[(cash, pool.contribution_amount), (pool.account, -pool.contribution_amount)],
            reference={"pool": pool.pk, "month": month},
        )
        contribution = PoolContribution.objects.create(pool=pool, user=actor, month=month,
                                                       amount=pool.contribution_amount, transaction=tx)
        record_audit(actor=actor, action="ledger.pool_contribution", obj=contribution, community=pool.community,
                     changes={"month": month, "amount": pool.contribution_amount})
        _pay_waiting_claims(actor=actor, pool=pool)
    return contribution


def _check_evidence(evidence) -> None:
    import os

    field = {"evidence": []}
    if evidence is None or not getattr(evidence, "name", None):
        field["evidence"].append(_("Attach the evidence (PDF, PNG or JPEG)."))
    else:
        ext = os.path.splitext(evidence.name)[1].lower()
        if ext not in EVIDENCE_TYPES:
            field["evidence"].append(_("Evidence must be a PDF, PNG or JPEG file."))
        elif evidence.size > MAX_EVIDENCE_BYTES:
            field["evidence"].append(_("Evidence may be at most 5 MB."))
        else:
            evidence.seek(0)
            head = evidence.read(16)
            evidence.seek(0)
            if not any(head.startswith(magic) for magic in EVIDENCE_TYPES[ext]):
                field["evidence"].append(_("The file's content is not the %(ext)s its name says.") % {"ext": ext[1:]})
    if field["evidence"]:
        raise InvalidInput(_("The claim was not filed."), field_errors=field)


def file_claim(*, actor, pool: Pool, amount: int, description: str, evidence) -> PoolClaim:
    permissions.require(actor, "participate", pool.community)
    if not PoolMember.objects.filter(pool=pool, user=actor).exists():
        raise PermissionDenied(_("Only pool members may file claims."), code="not_in_pool")
    errors: dict[str, list[str]] = {}
    if isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= MAX_AMOUNT:
        errors["amount"] = [_("Give a positive whole amount in minor units.")]
    description = (description or "").strip()
    if not 1 <= len(description) <= 1000:
        errors["description"] = [_("Describe the claim in 1 to 1000 characters.")]
    if errors:
        raise InvalidInput(_("The claim was not filed."), field_errors=errors)
    _check_evidence(evidence)
    with dbtx.atomic():
        claim = PoolClaim(pool=pool, claimant=actor, amount=amount, description=description)
        claim.evidence.save(f"claim-{secrets.token_hex(8)}{_ext(evidence.name)}", evidence, save=False)
        claim.save()
        record_audit(actor=actor, action="ledger.pool_claim_filed", obj=claim, community=pool.community,
                     changes={"amount": amount})
        publish_event(name="ledger.pool_claim_filed", community=pool.community,
                      payload={"pool_id": pool.pk, "claim_id": claim.pk})
    return claim


def _ext(name: str) -> str:
    import os

    return os.path.splitext(name)[1].lower()


def decide_claim(*, actor, claim: PoolClaim, approve: bool) -> PoolClaim:
    pool = claim.pool
    permissions.require(actor, "manage", pool.community)
    if claim.claimant_id == actor.pk:
        raise PermissionDenied(_("You cannot decide on your own claim."), code="own_claim")
    with dbtx.atomic():
        locked = PoolClaim.objects.select_for_update(of=("self",)).get(pk=claim.pk)
        if locked.status != "filed":
            raise Conflict(_("This claim was already decided."), code="claim_decided")
        locked.status = "queued" if approve else "rejected"
        locked.decided_by = actor
        locked.decided_at = timezone.now()
        locked.save(update_fields=["status", "decided_by", "decided_at"])
        record_audit(actor=actor, action="ledger.pool_claim_approved" if approve else "ledger.pool_claim_rejected",
                     obj=locked, community=pool.community)
        publish_event(name="ledger.pool_claim_decided", community=pool.community,
                      payload={"claim_id": locked.pk, "approved": approve})
        if approve:
            _pay_waiting_claims(actor=actor, pool=pool)
        locked.refresh_from_db()
    return locked


def outstanding_claims(pool: Pool) -> int:
    rows = pool.claims.filter(status__in=["queued", "partly_paid"]).aggregate(a=Sum("amount"), p=Sum("paid_amount"))
    return (rows["a"] or 0) - (rows["p"] or 0)


def _pay_waiting_claims(*, actor, pool: Pool) -> None:
    """Pay approved claims first come, first served, without ever taking the pool below zero."""
    funds = pool_funds(pool)
    for claim in PoolClaim.objects.select_for_update(of=("self",)).filter(
            pool=pool, status__in=["queued", "partly_paid"]).order_by("decided_at", "pk"):
        due = claim.amount - claim.paid_amount
        if funds <= 0:
            break
        if pool.claim_rule == "queue" and funds < due:
            break
        pay = min(due, funds)
        target = member_account(community=pool.community, user=claim.claimant, currency=pool.currency)
        post_transaction(
            community=pool.community, actor=actor, idempotency_key=f"pool-claim:{claim.pk}:{claim.paid_amount}",
            kind="pool", memo=_("Claim payout from %(pool)s") % {"pool": pool.name},
            postings=[(pool.account, pay), (target, -pay)], reference={"pool": pool.pk, "claim": claim.pk},
        )
        funds -= pay
        claim.paid_amount += pay
        claim.status = "paid" if claim.paid_amount == claim.amount else "partly_paid"
        claim.save(update_fields=["paid_amount", "status"])
        record_audit(actor=actor, action="ledger.pool_claim_paid", obj=claim, community=pool.community,
                     changes={"paid": pay, "status": claim.status})


def close_pool_year(*, actor, pool: Pool, year: int) -> PoolYearEnd:
    """Year end: refund the surplus in proportion to the year's contributions, or carry it over."""
    permissions.require(actor, "manage", pool.community)
    today = timezone.localdate()
    if isinstance(year, bool) or not isinstance(year, int) or not 2000 <= year < today.year:
        raise InvalidInput(_("Only a year that has ended can be closed."),
                           field_errors={"year": [_("Only a year that has ended can be closed.")]})
    with dbtx.atomic():
        Pool.objects.select_for_update().filter(pk=pool.pk).first()
        found = PoolYearEnd.objects.filter(pool=pool, year=year).first()
        if found is not None:
            return found
        surplus = max(0, pool_funds(pool) - outstanding_claims(pool))
        weights = dict(pool.contributions.filter(month__startswith=f"{year}-").values("user")
                       .annotate(total=Sum("amount")).values_list("user", "total"))
        rule = pool.year_end_rule
        tx = None
        refunded = 0
        if rule == "refund" and surplus > 0 and weights:
            users = sorted(weights)
            shares = largest_remainder(surplus, [weights[u] for u in users])
            from django.contrib.auth import get_user_model

            people = get_user_model().objects.in_bulk(users)
            postings = [(pool.account, surplus)] + [
                (member_account(community=pool.community, user=people[u], currency=pool.currency), -share)
                for u, share in zip(users, shares, strict=True) if share]
            tx = post_transaction(community=pool.community, actor=actor, idempotency_key=f"pool:{pool.pk}:year-end:{year}",
                                  kind="pool", memo=_("%(pool)s: %(year)d surplus refunded") % {"pool": pool.name, "year": year},
                                  postings=postings, reference={"pool": pool.pk, "year": year})
            refunded = surplus
        year_end = PoolYearEnd.objects.create(pool=pool, year=year, rule=rule, surplus=surplus, refunded=refunded,
                                              carried_over=surplus - refunded, transaction=tx)
        record_audit(actor=actor, action="ledger.pool_year_closed", obj=year_end, community=pool.community,
                     changes={"year": year, "surplus": surplus, "refunded": refunded})
        publish_event(name="ledger.pool_year_closed", community=pool.community,
                      payload={"pool_id": pool.pk, "year": year, "refunded": refunded})
    return year_end


def find_escrow(community, escrow_id: int) -> Escrow:
    found = Escrow.objects.filter(community=community, pk=escrow_id).select_related(
        "community", "account", "buyer", "seller", "moderator").first()
    if found is None:
        raise NotFound(_("No such escrow."))
    return found


__all__ = [
    "ensure_account", "member_account", "standard_account", "post_transaction", "post_transactions",
    "reverse_transaction", "allocate", "create_split_rule", "revise_split_rule", "retire_split_rule", "split_income",
    "settle", "open_escrow", "approve_escrow", "dispute_escrow", "release_after_timeout", "create_pool", "join_pool",
    "contribute", "file_claim", "decide_claim", "close_pool_year", "update_ledger_settings",
]
