"""Probes (/healthz, /readyz) and personal-access-token refusals: expired, revoked, wrong,
without the scope, and over the rate limit."""

from __future__ import annotations

import socket
import time
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from pumasi.platform.models import ApiToken, AuditEntry
from pumasi.platform.services import create_api_token, revoke_api_token
from pumasi.platform.tests.helpers import bearer


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


def _problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["code"] == code
    return body


def test_healthz_answers_without_touching_anything(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.content == b"ok"


def test_readyz_is_ready_with_only_a_database(db, client, settings):
    settings.REDIS_URL = None
    settings.MQTT_URL = None
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok"}}


@pytest.mark.parametrize("failing", ["redis", "mqtt"])
def test_readyz_names_the_failing_check(db, client, settings, failing):
    settings.REDIS_URL = f"redis://127.0.0.1:{_closed_port()}/0" if failing == "redis" else None
    settings.MQTT_URL = f"mqtt://127.0.0.1:{_closed_port()}" if failing == "mqtt" else None
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert body["checks"]["database"] == "ok"
    assert body["checks"][failing] != "ok" and "Error" in body["checks"][failing]


def test_an_expired_token_is_401(db, user):
    token, secret = create_api_token(user=user, name="soon", scopes=["read"],
                                     expires_at=timezone.now() + timedelta(hours=1))
    assert Client().get("/api/v1/me", **_auth(secret)).status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    _problem(Client().get("/api/v1/me", **_auth(secret)), 401, "unauthenticated")


def test_a_revoked_token_is_401_and_the_revocation_is_audited(db, user):
    token, secret = create_api_token(user=user, name="gone", scopes=["read"])
    revoke_api_token(user=user, token_id=token.pk)
    response = Client().get("/api/v1/me", **_auth(secret))
    _problem(response, 401, "unauthenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert AuditEntry.objects.filter(action="token.revoked", object_id=str(token.pk), actor=user).exists()


@pytest.mark.parametrize("header", ["Bearer pms_00000000_wrong", "Bearer ", "Basic dXNlcjpwYXNz"])
def test_a_wrong_secret_is_401(db, user, header):
    create_api_token(user=user, name="real", scopes=["read"])
    _problem(Client().get("/api/v1/me", HTTP_AUTHORIZATION=header), 401, "unauthenticated")


def test_a_token_of_a_deactivated_person_is_401(db, user):
    _token, secret = create_api_token(user=user, name="t", scopes=["read"])
    user.is_active = False
    user.save(update_fields=["is_active"])
    _problem(Client().get("/api/v1/me", **_auth(secret)), 401, "unauthenticated")


def test_a_write_without_its_scope_is_403_and_changes_nothing(db, community):
    _token, secret = create_api_token(user=community.organiser, name="reader", scopes=["read"])
    response = Client().post(f"/api/v1/communities/{community.slug}/invitations", data={},
                             content_type="application/json", **_auth(secret))
    body = _problem(response, 403, "forbidden")
    assert "communities:write" in body["title"]
    assert not community.invitations.exists()


def test_a_read_without_the_read_scope_is_403(db, user):
    _token, secret = create_api_token(user=user, name="writer", scopes=["communities:write"])
    _problem(Client().get("/api/v1/me", **_auth(secret)), 403, "forbidden")


def test_over_the_rate_limit_is_429_with_retry_after(db, user, settings):
    settings.PUMASI_API_RATE_LIMIT = 3
    cache.clear()  # counters are keyed by token id, which a rolled-back test may have used before
    if time.time() % 60 > 58:  # keep all four requests inside one one-minute window
        time.sleep(61 - time.time() % 60)
    _token, secret = create_api_token(user=user, name="busy", scopes=["read"])
    client = Client()
    assert [client.get("/api/v1/me", **_auth(secret)).status_code for _ in range(3)] == [200, 200, 200]
    response = client.get("/api/v1/me", **_auth(secret))
    _problem(response, 429, "rate_limited")
    assert 1 <= int(response["Retry-After"]) <= 60
    # The limit is per token: another token of the same person is not held back.
    _other, other_secret = create_api_token(user=user, name="calm", scopes=["read"])
    assert client.get("/api/v1/me", **_auth(other_secret)).status_code == 200


def _auth(secret: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": bearer(secret)["Authorization"]}


def test_a_read_only_token_revokes_itself_but_not_the_others(db, user):
    reader, reader_secret = create_api_token(user=user, name="reader", scopes=["read"])
    other, _other_secret = create_api_token(user=user, name="shop", scopes=["read", "platform:write"])
    client = Client()
    response = client.delete(f"/api/v1/tokens/{other.pk}", headers=bearer(reader_secret))
    _problem(response, 403, "forbidden")
    other.refresh_from_db()
    assert other.revoked_at is None
    assert not AuditEntry.objects.filter(action="token.revoked").exists()
    assert client.delete(f"/api/v1/tokens/{reader.pk}", headers=bearer(reader_secret)).status_code == 200
    reader.refresh_from_db()
    assert reader.revoked_at is not None
