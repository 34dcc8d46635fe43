"""The ledger pages render for members, hide from outsiders, and carry out their forms."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from pumasi.ledger import services
from pumasi.ledger.models import Escrow, PoolClaim, Settlement
from pumasi.tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    assert client.login(email=user.email, password=PASSWORD)
    return client


@pytest.fixture
def world(community, member_of):
    a = member_of(community)
    committee = member_of(community, "committee")
    ma = services.member_account(community=community, user=a)
    platform = services.standard_account(community=community, key="platform")
    income = services.standard_account(community=community, key="income")
    rule = services.create_split_rule(actor=community.organiser, community=community, name="Parking fees", shares=[
        {"account": ma, "basis_points": 6000}, {"account": income, "basis_points": 3500},
        {"account": platform, "basis_points": 500}])
    services.split_income(community=community, actor=None, idempotency_key="f1", memo="주차 요금", rule=rule, amount=3000,
                          occurred_at=timezone.now() - timedelta(days=40))
    services.split_income(community=community, actor=None, idempotency_key="f2", memo="today", rule=rule, amount=1000)
    return community, a, committee


def test_pages_render_for_members(world):
    community, a, committee = world
    client = _client(a)
    base = f"/c/{community.slug}/ledger/"
    for path in ("", "accounts/", "transactions/", "rules/", "statements/", "escrows/", "pools/"):
        response = client.get(base + path)
        assert response.status_code == 200, path
    page = client.get(base).content.decode()
    assert "5" in page and "Parking fees" in page
    tx_page = client.get(base + "transactions/").content.decode()
    assert "주차 요금" in tx_page


def test_outsiders_get_404_unless_public_totals(world, make_user):
    community, a, committee = world
    outsider = _client(make_user())
    assert outsider.get(f"/c/{community.slug}/ledger/").status_code == 404
    assert outsider.get(f"/c/{community.slug}/ledger/accounts/").status_code == 404
    services.update_ledger_settings(actor=community.organiser, community=community, public_totals=True)
    page = Client().get(f"/c/{community.slug}/ledger/")
    assert page.status_code == 200 and "Each member" not in page.content.decode()


def test_settle_from_the_page_and_download(world):
    community, a, committee = world
    client = _client(committee)
    last_month = (timezone.localdate().replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    two_back = (timezone.localdate().replace(day=1) - timedelta(days=35)).strftime("%Y-%m")
    for period in (last_month, two_back):
        client.post(f"/c/{community.slug}/ledger/statements/", {"period": period})
    assert Settlement.objects.filter(status="completed").count() == 2
    settlement = Settlement.objects.filter(total_earned__gt=0).first()
    assert settlement is not None and settlement.total_earned == 1800
    csv_text = client.get(f"/c/{community.slug}/ledger/statements/{settlement.pk}.csv").content.decode("utf-8-sig")
    assert "1800" in csv_text and a.email in csv_text
    printable = _client(a).get(f"/c/{community.slug}/ledger/statements/{settlement.pk}/")
    assert printable.status_code == 200 and "₩1,800" in printable.content.decode()
    bad = client.post(f"/c/{community.slug}/ledger/statements/", {"period": "soon"})
    assert bad.status_code == 200 and Settlement.objects.count() == 2


def test_escrow_and_pool_forms(world, member_of):
    community, a, committee = world
    seller = member_of(community)
    client = _client(a)
    response = client.post(f"/c/{community.slug}/ledger/escrows/", {
        "seller": seller.pk, "moderator": committee.pk, "amount": "12,000", "memo": "desk", "key": "abc"})
    assert response.status_code == 302
    escrow = Escrow.objects.get()
    assert escrow.amount == 12000
    half = client.post(f"/c/{community.slug}/ledger/escrows/", {
        "seller": seller.pk, "moderator": committee.pk, "amount": "10.5", "key": "abd"})
    assert half.status_code == 200 and "no minor unit" in half.content.decode() and Escrow.objects.count() == 1
    client.post(f"/c/{community.slug}/ledger/escrows/{escrow.pk}/", {"action": "release"})
    _client(seller).post(f"/c/{community.slug}/ledger/escrows/{escrow.pk}/", {"action": "release"})
    escrow.refresh_from_db()
    assert escrow.status == "released"
    pool = services.create_pool(actor=community.organiser, community=community, name="aid", contribution_amount=5000,
                                claim_rule="partial", year_end_rule="carry_over")
    url = f"/c/{community.slug}/ledger/pools/{pool.pk}/"
    client.post(url, {"action": "join"})
    client.post(url, {"action": "contribute", "month": "2025-03"})
    assert services.pool_funds(pool) == 5000
    client.post(url, {"action": "claim", "amount": "3000", "description": "broken phone",
                      "evidence": SimpleUploadedFile("p.png", b"\x89PNG\r\n\x1a\nxx", content_type="image/png")})
    claim = PoolClaim.objects.get()
    _client(committee).post(url, {"action": "approve", "claim": claim.pk})
    claim.refresh_from_db()
    assert claim.status == "paid" and services.pool_funds(pool) == 2000
    assert _client(a).get(url).status_code == 200
