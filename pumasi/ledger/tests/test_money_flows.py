"""Splits and the platform cap, settlement, escrow 2-of-3, mutual-aid pools, the Beancount export."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone

from pumasi.core.errors import Conflict, InvalidInput, PermissionDenied
from pumasi.ledger import selectors, services, tasks
from pumasi.ledger.models import Posting, Settlement, Transaction
from pumasi.platform.models import AuditEntry, Event

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
def shop(community, member_of):
    a, b = member_of(community), member_of(community)
    platform = services.standard_account(community=community, key="platform")
    income = services.standard_account(community=community, key="income")
    ma = services.member_account(community=community, user=a)
    mb = services.member_account(community=community, user=b)
    return community, a, b, platform, income, ma, mb


def test_allocate_never_loses_a_won(shop):
    community, a, b, platform, income, ma, mb = shop
    rule = services.create_split_rule(actor=community.organiser, community=community, name="thirds", shares=[
        {"account": ma, "basis_points": 3333}, {"account": mb, "basis_points": 3333},
        {"account": income, "basis_points": 3334}])
    parts = services.allocate(100, rule)
    assert sum(p for _a, p in parts) == 100
    assert [(acc.pk, p) for acc, p in parts] == [(ma.pk, 33), (mb.pk, 33), (income.pk, 34)]
    assert [p for _a, p in services.allocate(2, rule)] == [1, 1]  # ties to the earlier share
    assert services.allocate(0, rule) == []
    with pytest.raises(InvalidInput):
        services.allocate(-1, rule)


def test_fixed_and_remainder_account(shop):
    community, a, b, platform, income, ma, mb = shop
    rule = services.create_split_rule(actor=community.organiser, community=community, name="upkeep", shares=[
        {"account": income, "fixed_amount": 300}, {"account": platform, "basis_points": 500},
        {"account": ma, "basis_points": 5000}], remainder="to_account", remainder_account=mb)
    parts = dict((acc.code, p) for acc, p in services.allocate(2001, rule))
    assert parts == {"income": 300, "platform": 85, ma.code: 850, mb.code: 766}
    with pytest.raises(InvalidInput):
        services.allocate(100, rule)


def test_rules_that_do_not_add_up_or_break_the_cap_are_refused(shop):
    community, a, b, platform, income, ma, mb = shop
    org = community.organiser
    with pytest.raises(InvalidInput) as info:
        services.create_split_rule(actor=org, community=community, name="x", shares=[
            {"account": ma, "basis_points": 5000}, {"account": mb, "basis_points": 4000}])
    assert "90 %" in info.value.field_errors["shares"][0]
    with pytest.raises(InvalidInput) as info:
        services.create_split_rule(actor=org, community=community, name="x", shares=[
            {"account": ma, "basis_points": 8000}, {"account": platform, "basis_points": 2000}])
    assert "caps it at 10 %" in " ".join(info.value.field_errors["shares"])
    with pytest.raises(InvalidInput):
        services.create_split_rule(actor=org, community=community, name="x", shares=[
            {"account": ma, "basis_points": 10000}, {"account": platform, "fixed_amount": 10}])
    with pytest.raises(PermissionDenied):
        services.create_split_rule(actor=a, community=community, name="x", shares=[{"account": ma, "basis_points": 10000}])
    rule = services.create_split_rule(actor=org, community=community, name="ok", shares=[
        {"account": ma, "basis_points": 9000}, {"account": platform, "basis_points": 1000}])
    with pytest.raises(InvalidInput):  # lowering the cap under a rule in force is refused
        services.update_ledger_settings(actor=org, community=community, platform_cap_bp=500)
    services.revise_split_rule(actor=org, rule=rule, shares=[{"account": ma, "basis_points": 9500},
                                                              {"account": platform, "basis_points": 500}], note="cheaper")
    services.update_ledger_settings(actor=org, community=community, platform_cap_bp=500)
    assert [v.number for v in selectors.split_rule(community, rule.pk).versions.all()] == [1, 2]
    assert AuditEntry.objects.filter(action="ledger.split_rule_revised").exists()


def test_split_income_and_transparency(shop):
    community, a, b, platform, income, ma, mb = shop
    rule = services.create_split_rule(actor=community.organiser, community=community, name="fees", shares=[
        {"account": ma, "basis_points": 4500}, {"account": mb, "basis_points": 4500},
        {"account": platform, "basis_points": 1000}])
    tx = services.split_income(community=community, actor=None, idempotency_key="sale-1", memo="sale", rule=rule,
                               amount=10001)
    assert tx.reference["split_version"] == 1
    today = timezone.localdate()
    view = selectors.transparency(community, today, today + timedelta(days=1), viewer=a)
    assert view.income == 10001 and sum(view.to_owner.values()) == 10001
    assert view.to_owner["platform"] == 1000 and view.platform_percent == pytest.approx(10.0, abs=0.01)
    assert view.my_earnings == 4501


def test_settlement_is_idempotent_and_pays_members(shop):
    community, a, b, platform, income, ma, mb = shop
    cash = services.standard_account(community=community, key="cash")
    services.post_transaction(community=community, actor=None, idempotency_key="e1", memo="earned",
                              postings=[(cash, 7000), (ma, -5000), (mb, -2000)],
                              occurred_at=timezone.now() - timedelta(days=2))
    services.post_transaction(community=community, actor=None, idempotency_key="e2", memo="later",
                              postings=[(cash, 10), (ma, -10)])
    today = timezone.localdate()
    with pytest.raises(InvalidInput):  # a period that has not ended
        services.settle(actor=community.organiser, community=community, period_start=today,
                        period_end=today + timedelta(days=1))
    start, end = today - timedelta(days=3), today - timedelta(days=1)
    seen = []
    first = services.settle(actor=community.organiser, community=community, period_start=start, period_end=end,
                            progress=lambda d, t: seen.append((d, t)))
    assert first.status == "completed" and first.total_earned == 7000 and first.total_paid == 7000
    assert seen[-1] == (2, 2)
    assert selectors.balance_of(ma) == -10 and selectors.balance_of(cash) == 10  # today's 10 is next period's
    statements = {s.member_id: s for s in first.statements.all()}
    assert statements[a.pk].earned == 5000 and statements[a.pk].lines.count() == 1
    count = Transaction.objects.count()
    again = services.settle(actor=community.organiser, community=community, period_start=start, period_end=end)
    assert again.pk == first.pk and Transaction.objects.count() == count and Settlement.objects.count() == 1
    assert Event.objects.filter(name="ledger.settlement_completed").count() == 1
    assert Event.objects.filter(name="ledger.settlement_progress").exists()
    out = io.StringIO()
    call_command("ledger", "verify", "--community", community.slug, stdout=out)
    assert "ok" in out.getvalue()


def test_escrow_two_of_three(shop, member_of):
    community, buyer, seller, *_rest = shop
    moderator = member_of(community, "committee")
    stranger = member_of(community)
    escrow = services.open_escrow(actor=buyer, community=community, seller=seller, moderator=moderator, amount=50000,
                                  idempotency_key="order-1", memo="bike")
    assert services.open_escrow(actor=buyer, community=community, seller=seller, moderator=moderator, amount=50000,
                                idempotency_key="order-1", memo="bike").pk == escrow.pk
    assert selectors.balance_of(escrow.account) == -50000
    with pytest.raises(PermissionDenied) as info:
        services.approve_escrow(actor=stranger, escrow=escrow, decision="release")
    assert info.value.code == "not_a_party"
    services.approve_escrow(actor=buyer, escrow=escrow, decision="release")
    escrow.refresh_from_db()
    assert escrow.status == "held"
    services.approve_escrow(actor=moderator, escrow=escrow, decision="release")
    escrow.refresh_from_db()
    assert escrow.status == "released"
    assert selectors.balance_of(services.member_account(community=community, user=seller)) == -50000
    assert selectors.balance_of(escrow.account) == 0
    with pytest.raises(Conflict):
        services.approve_escrow(actor=seller, escrow=escrow, decision="refund")
    assert AuditEntry.objects.filter(action__startswith="ledger.escrow").count() >= 4


def test_escrow_timeout_release_unless_disputed(shop, member_of):
    community, buyer, seller, *_rest = shop
    moderator = member_of(community, "committee")
    e1 = services.open_escrow(actor=buyer, community=community, seller=seller, moderator=moderator, amount=100,
                              idempotency_key="o1", timeout_days=1)
    e2 = services.open_escrow(actor=buyer, community=community, seller=seller, moderator=moderator, amount=200,
                              idempotency_key="o2", timeout_days=1)
    with pytest.raises(Conflict):
        services.release_after_timeout(actor=seller, escrow=e1)
    services.dispute_escrow(actor=buyer, escrow=e2, reason="never arrived")
    with pytest.raises(PermissionDenied):
        services.dispute_escrow(actor=seller, escrow=e1, reason="x")
    from pumasi.ledger.models import Escrow

    # The timeout lies in the future; move it into the past (escrows are not append-only rows).
    Escrow.objects.filter(pk__in=[e1.pk, e2.pk]).update(timeout_at=timezone.now() - timedelta(minutes=1))
    assert tasks.release_due_escrows.call_local() == 1
    e1.refresh_from_db()
    e2.refresh_from_db()
    assert e1.status == "released" and e2.status == "held"
    with pytest.raises(Conflict):
        services.release_after_timeout(actor=seller, escrow=e2)


def test_pool_claims_never_below_zero_and_year_end_refund(community, member_of):
    org = community.organiser
    a, b = member_of(community), member_of(community)
    committee = member_of(community, "committee")
    pool = services.create_pool(actor=org, community=community, name="Car repairs", contribution_amount=10000,
                                claim_rule="partial", year_end_rule="refund")
    for person in (a, b):
        services.join_pool(actor=person, pool=pool)
    last_year = timezone.localdate().year - 1
    services.contribute(actor=a, pool=pool, month=f"{last_year}-01")
    services.contribute(actor=a, pool=pool, month=f"{last_year}-01")  # the schedule: once a month
    services.contribute(actor=a, pool=pool, month=f"{last_year}-02")
    services.contribute(actor=b, pool=pool, month=f"{last_year}-01")
    assert services.pool_funds(pool) == 30000
    with pytest.raises(InvalidInput) as info:
        services.file_claim(actor=a, pool=pool, amount=5000, description="dent",
                            evidence=SimpleUploadedFile("x.png", b"not a png", content_type="image/png"))
    assert "evidence" in info.value.field_errors
    with pytest.raises(InvalidInput):
        services.file_claim(actor=a, pool=pool, amount=5000, description="dent",
                            evidence=SimpleUploadedFile("x.exe", PNG))
    claim = services.file_claim(actor=a, pool=pool, amount=25000, description="dent",
                                evidence=SimpleUploadedFile("photo.png", PNG, content_type="image/png"))
    with pytest.raises(PermissionDenied):
        services.decide_claim(actor=b, claim=claim, approve=True)
    claim = services.decide_claim(actor=committee, claim=claim, approve=True)
    assert claim.status == "paid" and services.pool_funds(pool) == 5000
    big = services.file_claim(actor=b, pool=pool, amount=8000, description="engine",
                              evidence=SimpleUploadedFile("bill.pdf", b"%PDF-1.4 test", content_type="application/pdf"))
    big = services.decide_claim(actor=committee, claim=big, approve=True)
    assert big.status == "partly_paid" and big.paid_amount == 5000 and services.pool_funds(pool) == 0
    services.contribute(actor=b, pool=pool, month=f"{last_year}-02")
    big.refresh_from_db()
    assert big.status == "paid" and services.pool_funds(pool) == 7000
    year_end = services.close_pool_year(actor=org, pool=pool, year=last_year)
    # a gave 20000, b gave 20000: the 7000 surplus is shared 3500 / 3500
    assert year_end.refunded == 7000 and services.pool_funds(pool) == 0
    assert services.close_pool_year(actor=org, pool=pool, year=last_year).pk == year_end.pk
    assert selectors.verify_chain(community) == []


def test_queue_rule_waits_for_full_funds(community, member_of):
    a, committee = member_of(community), member_of(community, "committee")
    pool = services.create_pool(actor=community.organiser, community=community, name="Q", contribution_amount=1000,
                                claim_rule="queue", year_end_rule="carry_over")
    services.join_pool(actor=a, pool=pool)
    services.contribute(actor=a, pool=pool, month="2025-01")
    claim = services.file_claim(actor=a, pool=pool, amount=1500, description="x",
                                evidence=SimpleUploadedFile("e.jpg", b"\xff\xd8\xff\xe0rest"))
    claim = services.decide_claim(actor=committee, claim=claim, approve=True)
    assert claim.status == "queued" and claim.paid_amount == 0 and services.pool_funds(pool) == 1000
    services.contribute(actor=a, pool=pool, month="2025-02")
    claim.refresh_from_db()
    assert claim.status == "paid" and services.pool_funds(pool) == 500


def test_beancount_export_agrees_to_the_won(shop, member_of, tmp_path):
    from beancount import loader
    from beancount.core import data

    from pumasi.ledger.export import beancount_account

    community, a, b, platform, income, ma, mb = shop
    rule = services.create_split_rule(actor=community.organiser, community=community, name="fees", shares=[
        {"account": ma, "basis_points": 4500}, {"account": mb, "basis_points": 4500},
        {"account": platform, "basis_points": 1000}])
    for i in range(7):
        services.split_income(community=community, actor=None, idempotency_key=f"s{i}", memo=f'fee "{i}"', rule=rule,
                              amount=1234 + i)
    usd = services.standard_account(community=community, key="cash", currency="USD")
    usd_in = services.standard_account(community=community, key="income", currency="USD")
    tx = services.post_transaction(community=community, actor=None, idempotency_key="usd", memo="dollars",
                                   postings=[(usd, 1999), (usd_in, -1999)])
    services.reverse_transaction(actor=None, transaction=tx, idempotency_key="usd-rev")
    services.post_transaction(community=community, actor=None, idempotency_key="usd2", memo="dollars",
                              postings=[(usd, 1), (usd_in, -1)])
    target = tmp_path / "ledger.beancount"
    call_command("ledger", "export", "--format", "beancount", "--community", community.slug, "-o", str(target))
    entries, errors, _options = loader.load_file(str(target))
    assert errors == []
    sums: dict[tuple[str, str], Decimal] = {}
    for entry in entries:
        if isinstance(entry, data.Transaction):
            for posting in entry.postings:
                key = (posting.account, posting.units.currency)
                sums[key] = sums.get(key, Decimal(0)) + posting.units.number
    from pumasi.ledger.money import to_major

    for account in selectors.accounts(community):
        expected = to_major(selectors.balance_of(account), account.currency)
        assert sums.get((beancount_account(account), account.currency), Decimal(0)) == expected, account.code
    assert sum(1 for e in entries if isinstance(e, data.Balance)) == selectors.accounts(community).count()
    assert Posting.objects.filter(account__community=community).count() > 20
