"""The Idempotency-Key header layer (pumasi.platform.idempotency) on real money-moving operations:
replay, refusal of a reused key, release after a refusal, per-token key spaces, concurrency, expiry."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from pumasi.ledger import services as ledger
from pumasi.ledger.models import Transaction
from pumasi.platform import idempotency
from pumasi.platform.models import IdempotencyKey
from pumasi.platform.services import create_api_token
from pumasi.platform.tasks import prune_idempotency_keys


def _setup(community):
    cash = ledger.standard_account(community=community, key="cash")
    income = ledger.standard_account(community=community, key="income")
    url = f"/api/v1/communities/{community.slug}/ledger/transactions"
    return url, {"memo": "fee", "postings": [{"account_id": cash.pk, "amount": 500},
                                             {"account_id": income.pk, "amount": -500}]}


def _post(client, url, body, key, **extra):
    return client.post(url, json.dumps(body), content_type="application/json", HTTP_IDEMPOTENCY_KEY=key, **extra)


@pytest.mark.django_db
def test_same_key_same_answer_and_reuse_refused(community, api_client_for):
    url, body = _setup(community)
    client = api_client_for(community.organiser)
    first = _post(client, url, body, "key-1")
    assert first.status_code == 201, first.content
    # the same request in another key order and spacing is the same request
    reordered = json.dumps({"postings": body["postings"], "memo": "fee"}, indent=2)
    again = client.post(url, reordered, content_type="application/json", HTTP_IDEMPOTENCY_KEY='"key-1"')
    assert again.status_code == 201 and again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true" and not first.has_header("Idempotent-Replayed")
    audit_before = community.audit_entries.count()

    changed = {**body, "memo": "another fee"}
    clash = _post(client, url, changed, "key-1")
    assert clash.status_code == 422 and clash["Content-Type"] == "application/problem+json"
    assert clash.json()["code"] == "idempotency_key_reused" and clash.json()["title"]
    other_path = _post(client, f"{url}/{first.json()['id']}/reversal", {}, "key-1")
    assert other_path.status_code == 422 and other_path.json()["code"] == "idempotency_key_reused"
    assert Transaction.objects.count() == 1 and community.audit_entries.count() == audit_before
    stored = IdempotencyKey.objects.get()
    assert (stored.key, stored.method, stored.status_code, stored.path) == ("key-1", "POST", 201, url)
    assert stored.owner.startswith("token:")


@pytest.mark.django_db
def test_refusal_releases_the_key_and_bad_keys_are_refused(community, api_client_for):
    url, body = _setup(community)
    client = api_client_for(community.organiser)
    unbalanced = {**body, "postings": [body["postings"][0], {**body["postings"][1], "amount": -499}]}
    refused = _post(client, url, unbalanced, "key-2")
    assert refused.status_code == 422 and "postings" in refused.json()["errors"]
    assert not IdempotencyKey.objects.exists() and not Transaction.objects.exists()
    corrected = _post(client, url, body, "key-2")  # a corrected retry may use the same key
    assert corrected.status_code == 201 and Transaction.objects.count() == 1

    for bad in ("x" * 256, '""'):
        answer = _post(client, url, body, bad)
        assert answer.status_code == 400 and answer.json()["code"] == "idempotency_key_invalid"
    assert Transaction.objects.count() == 1


@pytest.mark.django_db
def test_keys_are_per_token(community, api_client_for):
    url, body = _setup(community)
    first = _post(api_client_for(community.organiser), url, body, "shared-key")
    second = _post(api_client_for(community.organiser), url, body, "shared-key")
    # another token's key space: not replayed by this layer; the ledger's own key (per community)
    # then finds the same transaction
    assert first.status_code == second.status_code == 201 and not second.has_header("Idempotent-Replayed")
    assert second.json()["id"] == first.json()["id"] and Transaction.objects.count() == 1
    assert IdempotencyKey.objects.filter(key="shared-key").count() == 2


@pytest.mark.django_db
def test_expired_keys_are_free_again_and_pruned(community, api_client_for):
    url, body = _setup(community)
    client = api_client_for(community.organiser)
    assert _post(client, url, body, "old-key").status_code == 201
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=25))
    fresh = _post(client, url, {**body, "idempotency_key": "ledger-2"}, "old-key")
    # past 24 h the key is unknown: the changed body is a new request, not a reuse
    assert fresh.status_code == 201 and not fresh.has_header("Idempotent-Replayed")
    assert IdempotencyKey.objects.count() == 1
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=25))
    assert prune_idempotency_keys.call_local() == 1
    assert not IdempotencyKey.objects.exists()


@pytest.mark.django_db
def test_openapi_documents_the_header_on_opted_in_operations(client):
    schema = client.get("/api/v1/openapi.json").json()
    marked = {(path, method) for path, item in schema["paths"].items() for method, op in item.items()
              if any(p.get("name") == "Idempotency-Key" for p in op.get("parameters", []))}
    assert ("/api/v1/communities/{slug}/ledger/transactions", "post") in marked
    assert ("/api/v1/sharing/zones/{slug}/bookings", "post") in marked
    assert ("/api/v1/market/{slug}/products/{product_id}/orders", "post") in marked
    assert all(method == "post" for _path, method in marked)


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_run_once(community):
    url, body = _setup(community)
    _token, secret = create_api_token(user=community.organiser, name="race", scopes=["read", "ledger:write"])
    barrier = threading.Barrier(2)
    answers = []

    def send():
        try:
            client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
            barrier.wait()
            answers.append(_post(client, url, body, "race-key"))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(answers) == 2
    statuses = sorted(a.status_code for a in answers)
    # one runs; the other waits for it and replays its answer (or, if it could not wait, 409)
    assert statuses in ([201, 201], [201, 409]), [a.content for a in answers]
    assert Transaction.objects.count() == 1 and IdempotencyKey.objects.count() == 1
    if statuses == [201, 201]:
        assert answers[0].json() == answers[1].json()
        assert sum(a.has_header("Idempotent-Replayed") for a in answers) == 1


def test_fingerprint_and_key_parsing_are_strict():
    with pytest.raises(idempotency.KeyProblem):
        idempotency.parse_key("bad\nkey")
    assert idempotency.parse_key(' "abc" ') == "abc"
