"""Property tests over random sequences of ledger operations, and 20 threads posting to one account."""

from __future__ import annotations

import itertools
import threading
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, connections
from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pumasi.core.errors import DomainError
from pumasi.ledger import selectors, services
from pumasi.ledger.models import AccountBalance, Posting, Transaction
from pumasi.tests.factories import CommunityFactory, MembershipFactory, UserFactory

_counter = itertools.count()

op = st.one_of(
    st.tuples(st.just("post"), st.integers(0, 3), st.integers(0, 3), st.integers(1, 10**7)),
    st.tuples(st.just("replay"), st.integers(0, 50)),
    st.tuples(st.just("reverse"), st.integers(0, 50)),
    st.tuples(st.just("split"), st.integers(0, 10**6)),
    st.tuples(st.just("escrow"), st.integers(1, 10**5), st.sampled_from(["release", "refund"])),
    st.tuples(st.just("contribute"), st.integers(0, 2), st.integers(1, 12)),
    st.tuples(st.just("claim"), st.integers(0, 2), st.integers(1, 50_000)),
    st.tuples(st.just("settle"),),
)


@pytest.mark.django_db
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(ops=st.lists(op, min_size=1, max_size=25), bps=st.lists(st.integers(1, 5000), min_size=1, max_size=4))
def test_random_operations_keep_the_books(ops, bps):
    n = next(_counter)
    community = CommunityFactory(slug=f"prop-{n}")
    org, committee = UserFactory(), UserFactory()
    people = [UserFactory() for _ in range(3)]
    MembershipFactory(community=community, user=org, role="organiser")
    MembershipFactory(community=community, user=committee, role="committee")
    for person in people:
        MembershipFactory(community=community, user=person, role="member")
    accounts = [services.standard_account(community=community, key=k) for k in ("cash", "income", "expenses")]
    accounts.append(services.member_account(community=community, user=people[0]))
    members = [services.member_account(community=community, user=p) for p in people]
    total_bp = sum(bps)
    shares = [{"account": m, "basis_points": bp * 10000 // total_bp} for m, bp in zip(members, bps, strict=False)]
    shares[0]["basis_points"] += 10000 - sum(s["basis_points"] for s in shares)
    shares = [s for s in shares if s["basis_points"]]
    rule = services.create_split_rule(actor=org, community=community, name="r", shares=shares)
    pool = services.create_pool(actor=org, community=community, name="p", contribution_amount=7000,
                                claim_rule="partial", year_end_rule="refund")
    for person in people:
        services.join_pool(actor=person, pool=pool)
    posted: list[tuple[str, dict]] = []
    for index, item in enumerate(ops):
        kind = item[0]
        try:
            if kind == "post":
                _k, i, j, amount = item
                if i == j:
                    continue
                entry = {"idempotency_key": f"p{index}", "memo": "", "postings": [(accounts[i], amount), (accounts[j], -amount)]}
                services.post_transaction(community=community, actor=None, **entry)
                posted.append((f"p{index}", entry))
            elif kind == "replay" and posted:
                key, entry = posted[item[1] % len(posted)]
                before = Transaction.objects.count()
                again = services.post_transaction(community=community, actor=None, **entry)
                assert again.idempotency_key == key and Transaction.objects.count() == before
            elif kind == "reverse" and posted:
                key, _entry = posted[item[1] % len(posted)]
                tx = Transaction.objects.get(community=community, idempotency_key=key)
                services.reverse_transaction(actor=None, transaction=tx, idempotency_key=f"rev-{key}")
            elif kind == "split":
                parts = services.allocate(item[1], rule)
                assert sum(p for _a, p in parts) == item[1]
                if item[1]:
                    services.split_income(community=community, actor=None, idempotency_key=f"s{index}", memo="",
                                          rule=rule, amount=item[1], occurred_at=timezone.now() - timedelta(days=3))
            elif kind == "escrow":
                escrow = services.open_escrow(actor=people[0], community=community, seller=people[1],
                                              moderator=committee, amount=item[1], idempotency_key=f"e{index}")
                services.approve_escrow(actor=people[0], escrow=escrow, decision=item[2])
                services.approve_escrow(actor=committee, escrow=escrow, decision=item[2])
            elif kind == "contribute":
                services.contribute(actor=people[item[1]], pool=pool, month=f"2025-{item[2]:02d}")
            elif kind == "claim":
                claim = services.file_claim(actor=people[item[1]], pool=pool, amount=item[2], description="x",
                                            evidence=SimpleUploadedFile("e.pdf", b"%PDF-1.7 x"))
                services.decide_claim(actor=committee, claim=claim, approve=True)
            elif kind == "settle":
                today = timezone.localdate()
                services.settle(actor=org, community=community, period_start=today - timedelta(days=5),
                                period_end=today - timedelta(days=1))
        except DomainError as error:
            # Refusals are fine (e.g. a transaction reversed twice); they must write nothing.
            assert error.status in (409, 422), error
        assert services.pool_funds(pool) >= 0
    for currency, total in Posting.objects.filter(account__community=community).values("currency").annotate(
            t=Sum("amount")).values_list("currency", "t"):
        assert total == 0, currency
    for tx_id, total in Posting.objects.filter(transaction__community=community).values("transaction_id").annotate(
            t=Sum("amount")).values_list("transaction_id", "t"):
        assert total == 0, tx_id
    sums = dict(Posting.objects.filter(account__community=community).values("account_id").annotate(
        t=Sum("amount")).values_list("account_id", "t"))
    for kept in AccountBalance.objects.filter(account__community=community):
        assert kept.balance == sums.get(kept.account_id, 0)
    assert selectors.verify_chain(community) == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_parallel_postings_to_one_account(community):
    """Runs on both databases: PostgreSQL locks the balance row, SQLite serialises writers with
    BEGIN IMMEDIATE (settings); either way the balance must be exact."""
    cash = services.standard_account(community=community, key="cash")
    income = services.standard_account(community=community, key="income")
    barrier = threading.Barrier(20)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            services.post_transaction(community=community, actor=None, idempotency_key=f"t{i}", memo=str(i),
                                      postings=[(cash, 100 + i), (income, -(100 + i))])
            # the same key again, concurrently with the others: must be the same transaction
            services.post_transaction(community=community, actor=None, idempotency_key=f"t{i}", memo=str(i),
                                      postings=[(cash, 100 + i), (income, -(100 + i))])
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert selectors.balance_of(cash) == sum(100 + i for i in range(20))
    assert Transaction.objects.filter(community=community).count() == 20
    assert sorted(Transaction.objects.values_list("seq", flat=True)) == list(range(1, 21))
    assert selectors.verify_chain(community) == []
    assert connection.vendor in ("sqlite", "postgresql")
