"""Double entry, idempotency, reversals, append-only triggers, the hash chain and its verification."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, IntegrityError, connection
from django.db import transaction as dbtx

from pumasi.core.errors import Conflict, InvalidInput
from pumasi.ledger import selectors, services, triggers
from pumasi.ledger.models import Account, AccountBalance, Posting, Transaction
from pumasi.ledger.money import format_amount, parse_amount
from pumasi.platform.models import AuditEntry, Event

pytestmark = pytest.mark.django_db


@pytest.fixture
def books(community):
    cash = services.standard_account(community=community, key="cash")
    income = services.standard_account(community=community, key="income")
    return community, cash, income


def test_post_keeps_balances_and_publishes(books):
    community, cash, income = books
    tx = services.post_transaction(community=community, actor=community.organiser, idempotency_key="fee-1",
                                   memo="parking", postings=[(cash, 2000), (income, -2000)], kind="fee")
    assert tx.seq == 1 and tx.prev_hash == services.GENESIS and len(tx.hash) == 64
    assert selectors.balance_of(cash) == 2000 and selectors.balance_of(income) == -2000
    event = Event.objects.get(name="ledger.transaction_posted")
    assert event.payload["transaction_id"] == tx.pk and event.payload["transaction_ids"] == [tx.pk]
    assert AuditEntry.objects.filter(action="ledger.transaction_posted", object_id=str(tx.pk)).exists()


def test_idempotent_replay_and_reused_key(books):
    community, cash, income = books
    first = services.post_transaction(community=community, actor=None, idempotency_key="k", memo="m",
                                      postings=[(cash, 10), (income, -10)])
    again = services.post_transaction(community=community, actor=None, idempotency_key="k", memo="m",
                                      postings=[(income, -10), (cash, 10)])
    assert again.pk == first.pk
    assert Transaction.objects.count() == 1 and selectors.balance_of(cash) == 10
    with pytest.raises(Conflict) as info:
        services.post_transaction(community=community, actor=None, idempotency_key="k", memo="m",
                                  postings=[(cash, 11), (income, -11)])
    assert info.value.code == "idempotency_key_reused"
    assert Transaction.objects.count() == 1


@pytest.mark.parametrize("postings, field_text", [
    (lambda c, i: [(c, 100), (i, -99)], "do not balance"),
    (lambda c, i: [(c, 100)], "at least two"),
    (lambda c, i: [(c, 10.5), (i, -10.5)], "whole numbers"),
    (lambda c, i: [(c, 0), (i, 0)], "zero"),
])
def test_bad_entries_are_refused_and_write_nothing(books, postings, field_text):
    community, cash, income = books
    with pytest.raises(InvalidInput) as info:
        services.post_transaction(community=community, actor=None, idempotency_key="bad", memo="",
                                  postings=postings(cash, income))
    assert field_text in " ".join(info.value.field_errors["postings"])
    assert Transaction.objects.count() == 0 and Posting.objects.count() == 0


def test_unknown_currency_and_fraction_of_a_won():
    with pytest.raises(InvalidInput) as info:
        parse_amount("10", "XYZ")
    assert "currency" in info.value.field_errors
    with pytest.raises(InvalidInput) as info:
        parse_amount("10.5", "KRW")
    assert "no minor unit" in info.value.message
    assert parse_amount("12.34", "USD") == 1234
    assert parse_amount("₩12,000", "KRW") == 12000
    with pytest.raises(InvalidInput):
        parse_amount("1.234", "USD")
    assert format_amount(-1234, "USD") == "-$12.34" and format_amount(12000, "KRW") == "₩12,000"


def test_unknown_currency_account_refused(community):
    with pytest.raises(InvalidInput) as info:
        services.ensure_account(community=community, code="x", name="X", type="asset", owner_kind="community",
                                currency="XYZ")
    assert "currency" in info.value.field_errors
    assert not Account.objects.exists()


def test_ensure_account_is_idempotent_and_strict(community, user):
    a = services.member_account(community=community, user=user)
    b = services.member_account(community=community, user=user)
    assert a.pk == b.pk and a.type == "liability" and a.owner_kind == "member"
    with pytest.raises(Conflict):
        services.ensure_account(community=community, code=a.code, name="x", type="asset", owner_kind="community")
    usd = services.member_account(community=community, user=user, currency="USD")
    assert usd.pk != a.pk


def test_account_of_another_community_refused(books, make_user):
    from pumasi.tests.factories import CommunityFactory

    community, cash, _income = books
    other = services.standard_account(community=CommunityFactory(), key="income")
    with pytest.raises(InvalidInput):
        services.post_transaction(community=community, actor=None, idempotency_key="x", memo="",
                                  postings=[(cash, 5), (other, -5)])


def test_reversal_points_at_original_once(books):
    community, cash, income = books
    tx = services.post_transaction(community=community, actor=None, idempotency_key="a", memo="",
                                   postings=[(cash, 500), (income, -500)])
    rev = services.reverse_transaction(actor=community.organiser, transaction=tx, idempotency_key="a-rev")
    assert rev.reverses_id == tx.pk and rev.kind == "reversal"
    assert selectors.balance_of(cash) == 0 and selectors.balance_of(income) == 0
    assert services.reverse_transaction(actor=None, transaction=tx, idempotency_key="a-rev").pk == rev.pk
    with pytest.raises(Conflict):
        services.reverse_transaction(actor=None, transaction=tx, idempotency_key="a-rev-2")
    with pytest.raises(Conflict):
        services.reverse_transaction(actor=None, transaction=rev, idempotency_key="rev-rev")


def test_database_refuses_update_and_delete(books):
    community, cash, income = books
    tx = services.post_transaction(community=community, actor=None, idempotency_key="a", memo="",
                                   postings=[(cash, 500), (income, -500)])
    for statement in (
        f"UPDATE ledger_posting SET amount = 1 WHERE transaction_id = {tx.pk}",
        f"DELETE FROM ledger_posting WHERE transaction_id = {tx.pk}",
        f"UPDATE ledger_transaction SET memo = 'x' WHERE id = {tx.pk}",
        f"DELETE FROM ledger_transaction WHERE id = {tx.pk}",
    ):
        with pytest.raises((IntegrityError, DatabaseError)), dbtx.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)
    with pytest.raises((IntegrityError, DatabaseError)), dbtx.atomic():
        Posting.objects.filter(transaction=tx).update(amount=7)
    assert selectors.verify_chain(community) == []


def test_database_refuses_overdraft_of_guarded_account(community):
    pool_account = services.ensure_account(community=community, code="pool:x", name="Pool", type="liability",
                                           owner_kind="pool")
    with pytest.raises((IntegrityError, DatabaseError)), dbtx.atomic():
        AccountBalance.objects.filter(account=pool_account).update(balance=5)
    cash = services.standard_account(community=community, key="cash")
    with pytest.raises(InvalidInput) as info:
        services.post_transaction(community=community, actor=None, idempotency_key="over", memo="",
                                  postings=[(pool_account, 5), (cash, -5)])
    assert info.value.code == "insufficient_funds"


def test_verify_names_the_first_tampered_transaction(books):
    """Tampering needs the trigger out of the way, as an attacker with raw database access would do:
    the test drops it inside its own database transaction (rolled back afterwards, DDL included, on
    both SQLite and PostgreSQL), changes one posting's amount on both sides so that the postings
    still balance and the kept balances are fixed up too, and `verify` still finds it by hash."""
    community, cash, income = books
    txs = [services.post_transaction(community=community, actor=None, idempotency_key=f"t{i}", memo=f"fee {i}",
                                     postings=[(cash, 100 + i), (income, -100 - i)]) for i in range(5)]
    out = io.StringIO()
    call_command("ledger", "verify", "--community", community.slug, stdout=out)
    assert "ok (5 transactions)" in out.getvalue()
    victim = txs[2]
    triggers.uninstall(connection, ("UPDATE",))
    with connection.cursor() as cursor:
        cursor.execute("UPDATE ledger_posting SET amount = amount + 1000 WHERE transaction_id = %s AND amount > 0", [victim.pk])
        cursor.execute("UPDATE ledger_posting SET amount = amount - 1000 WHERE transaction_id = %s AND amount < 0", [victim.pk])
        cursor.execute("UPDATE ledger_accountbalance SET balance = balance + 1000 WHERE account_id = %s", [cash.pk])
        cursor.execute("UPDATE ledger_accountbalance SET balance = balance - 1000 WHERE account_id = %s", [income.pk])
    triggers.install(connection, ("UPDATE",))
    problems = selectors.verify_chain(community)
    assert [(p.seq, p.transaction_id) for p in problems] == [(3, victim.pk)]
    assert "hash" in problems[0].reason
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("ledger", "verify", "--community", community.slug, stdout=out)
    assert f"BROKEN at transaction #3 (id {victim.pk})" in out.getvalue()


def test_verify_finds_a_kept_balance_that_drifted(books):
    community, cash, income = books
    services.post_transaction(community=community, actor=None, idempotency_key="x", memo="",
                              postings=[(cash, 100), (income, -100)])
    AccountBalance.objects.filter(account=cash).update(balance=99)
    problems = selectors.verify_chain(community)
    assert len(problems) == 1 and "cash" in problems[0].reason


def test_batch_posts_in_one_go(books):
    community, cash, income = books
    entries = [{"idempotency_key": f"b{i}", "memo": "", "postings": [(cash, i + 1), (income, -(i + 1))]} for i in range(50)]
    entries.append(dict(entries[0]))  # the same key twice in one batch is one transaction
    result = services.post_transactions(community=community, actor=None, entries=entries)
    assert len(result) == 51 and result[0].pk == result[-1].pk
    assert Transaction.objects.count() == 50 and Event.objects.filter(name="ledger.transaction_posted").count() == 1
    assert selectors.balance_of(cash) == sum(range(1, 51))
    assert [t.seq for t in Transaction.objects.order_by("seq")] == list(range(1, 51))
    assert selectors.verify_chain(community) == []
    bad = [{"idempotency_key": "n1", "memo": "", "postings": [(cash, 1), (income, -1)]},
           {"idempotency_key": "n2", "memo": "", "postings": [(cash, 1), (income, -2)]}]
    with pytest.raises(InvalidInput) as info:
        services.post_transactions(community=community, actor=None, entries=bad)
    assert "entries.1.postings" in info.value.field_errors
    assert Transaction.objects.count() == 50
