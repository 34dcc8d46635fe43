"""The ledger API: scopes, idempotency keys, problem+json refusals, and the main flows."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from pumasi.ledger import services
from pumasi.ledger.models import Transaction

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(community, member_of, api_client_for):
    cash = services.standard_account(community=community, key="cash")
    income = services.standard_account(community=community, key="income")
    return community, cash, income, api_client_for(community.organiser)


def _url(community, rest: str) -> str:
    return f"/api/v1/communities/{community.slug}/ledger/{rest}"


def test_post_replay_and_conflict(setup):
    community, cash, income, client = setup
    body = {"memo": "fee", "postings": [{"account_id": cash.pk, "amount": 500}, {"account_id": income.pk, "amount": -500}]}
    first = client.post(_url(community, "transactions"), body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k1")
    assert first.status_code == 201, first.content
    again = client.post(_url(community, "transactions"), body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k1")
    assert again.status_code == 201 and again.json()["id"] == first.json()["id"]
    body["postings"][0]["amount"] = 600
    body["postings"][1]["amount"] = -600
    clash = client.post(_url(community, "transactions"), body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k1")
    # the Idempotency-Key header layer answers a reused key per the IETF draft: 422
    assert clash.status_code == 422 and clash["Content-Type"] == "application/problem+json"
    assert clash.json()["code"] == "idempotency_key_reused"
    body["postings"][1]["amount"] = -599
    bad = client.post(_url(community, "transactions"), body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k2")
    assert bad.status_code == 422 and "postings" in bad.json()["errors"]
    frac = client.post(_url(community, "transactions"), {"postings": [{"account_id": cash.pk, "amount": 1.5},
                                                                      {"account_id": income.pk, "amount": -1.5}]},
                       content_type="application/json", HTTP_IDEMPOTENCY_KEY="k3")
    assert frac.status_code == 422
    assert Transaction.objects.count() == 1
    listed = client.get(_url(community, "transactions")).json()
    assert [t["seq"] for t in listed["items"]] == [1]
    accounts = client.get(_url(community, "accounts")).json()["items"]
    assert {a["code"]: a["balance"] for a in accounts} == {"cash": 500, "income": -500}


def test_scopes_and_roles(setup, member_of, api_client_for):
    community, cash, income, _client = setup
    reader = api_client_for(community.organiser, scopes=["read"])
    body = {"idempotency_key": "x", "postings": [{"account_id": cash.pk, "amount": 1}, {"account_id": income.pk, "amount": -1}]}
    assert reader.post(_url(community, "transactions"), body, content_type="application/json").status_code == 403
    assert reader.get(_url(community, "accounts")).status_code == 200
    member = api_client_for(member_of(community))
    assert member.post(_url(community, "transactions"), body, content_type="application/json").status_code == 403
    outsider = api_client_for(member_of(community).__class__.objects.create_user(email="o@example.com", password="x"))
    assert outsider.get(_url(community, "accounts")).status_code == 404


def test_split_rule_escrow_pool_and_settlement_over_api(setup, member_of, api_client_for):
    community, cash, income, client = setup
    seller, buyer, moderator = member_of(community), member_of(community), member_of(community, "committee")
    seller_account = services.member_account(community=community, user=seller)
    platform = services.standard_account(community=community, key="platform")
    rule = client.post(_url(community, "split-rules"), {"name": "fees", "shares": [
        {"account_id": seller_account.pk, "basis_points": 9500}, {"account_id": platform.pk, "basis_points": 500}]},
        content_type="application/json")
    assert rule.status_code == 201, rule.content
    greedy = client.post(_url(community, "split-rules"), {"name": "greedy", "shares": [
        {"account_id": seller_account.pk, "basis_points": 5000}, {"account_id": platform.pk, "basis_points": 5000}]},
        content_type="application/json")
    assert greedy.status_code == 422 and "shares" in greedy.json()["errors"]
    rule_id = rule.json()["id"]
    parts = client.get(_url(community, f"split-rules/{rule_id}/allocation?amount=1001")).json()
    assert sum(p["amount"] for p in parts) == 1001
    income_tx = client.post(_url(community, "income"), {"rule_id": rule_id, "amount": 2000, "memo": "parking"},
                            content_type="application/json", HTTP_IDEMPOTENCY_KEY="i1")
    assert income_tx.status_code == 201
    seen = api_client_for(buyer).get(_url(community, "transparency?period=2020-01"))
    assert seen.status_code == 200 and seen.json()["income"] == 0
    buyer_client = api_client_for(buyer)
    escrow = buyer_client.post(_url(community, "escrows"), {"seller_id": seller.pk, "moderator_id": moderator.pk,
                                                            "amount": 3000}, content_type="application/json",
                               HTTP_IDEMPOTENCY_KEY="order-9")
    assert escrow.status_code == 201, escrow.content
    eid = escrow.json()["id"]
    stranger = api_client_for(member_of(community))
    refused = stranger.post(_url(community, f"escrows/{eid}/approvals"), {"decision": "release"},
                            content_type="application/json")
    assert refused.status_code in (403, 404)
    buyer_client.post(_url(community, f"escrows/{eid}/approvals"), {"decision": "refund"}, content_type="application/json")
    done = api_client_for(moderator).post(_url(community, f"escrows/{eid}/approvals"), {"decision": "refund"},
                                          content_type="application/json")
    assert done.json()["status"] == "refunded"
    pool = client.post(_url(community, "pools"), {"name": "aid", "contribution_amount": 1000, "claim_rule": "partial",
                                                  "year_end_rule": "refund"}, content_type="application/json")
    assert pool.status_code == 201
    pid = pool.json()["id"]
    assert buyer_client.post(_url(community, f"pools/{pid}/members")).status_code == 201
    assert buyer_client.post(_url(community, f"pools/{pid}/contributions"), {"month": "2025-01"},
                             content_type="application/json").status_code == 201
    claim = buyer_client.post(_url(community, f"pools/{pid}/claims"), {
        "amount": 400, "description": "glasses",
        "evidence": SimpleUploadedFile("r.pdf", b"%PDF-1.5 receipt", content_type="application/pdf")})
    assert claim.status_code == 201, claim.content
    bad_claim = buyer_client.post(_url(community, f"pools/{pid}/claims"), {
        "amount": 400, "description": "glasses", "evidence": SimpleUploadedFile("r.pdf", b"MZ not a pdf")})
    assert bad_claim.status_code == 422 and "evidence" in bad_claim.json()["errors"]
    decided = client.post(_url(community, f"pools/{pid}/claims/{claim.json()['id']}/decision"), {"approve": True},
                          content_type="application/json")
    assert decided.json()["status"] == "paid"
    settled = client.post(_url(community, "settlements"), {"period": "2025-01"}, content_type="application/json")
    assert settled.status_code == 201 and settled.json()["status"] == "completed"
