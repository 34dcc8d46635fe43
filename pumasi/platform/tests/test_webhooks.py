"""Webhooks out against a real HTTP receiver on loopback that checks signatures with the
independent `standardwebhooks` library; retries on schedule, replay, auto-disable; events in."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone
from standardwebhooks import Webhook

from pumasi.core.errors import InvalidInput, PermissionDenied
from pumasi.core.events import publish_event
from pumasi.platform import webhooks
from pumasi.platform.models import (
    AuditEntry,
    InboundMessage,
    Notification,
    WebhookDelivery,
    WebhookSubscription,
)


class Receiver:
    """A loopback HTTP server; answers with the next status in `statuses` (then 204)."""

    def __init__(self, secret: str | None = None, statuses: list[int] | None = None):
        self.secret = secret
        self.statuses = list(statuses or [])
        self.received: list[dict] = []
        self.verified: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.received.append({"headers": headers, "body": body})
                if receiver.secret:
                    receiver.verified.append(Webhook(receiver.secret).verify(body, headers))
                status = receiver.statuses.pop(0) if receiver.statuses else 204
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(**kwargs):
        made.append(Receiver(**kwargs))
        return made[-1]

    yield make
    for r in made:
        r.close()


def _subscribe(community, url, types=("ledger.posted",)):
    return webhooks.create_subscription(actor=community.organiser, community=community, url=url, event_types=list(types))


def test_events_are_delivered_signed_per_standard_webhooks(community, receiver, django_capture_on_commit_callbacks):
    target = receiver()
    subscription = _subscribe(community, target.url)
    target.secret = subscription.secret
    assert subscription.secret.startswith("whsec_")
    with django_capture_on_commit_callbacks(execute=True):
        event = publish_event(name="ledger.posted", community=community, payload={"amount": 5000})
        publish_event(name="sharing.booked", community=community, payload={})  # not subscribed
        publish_event(name="ledger.posted", community=community, recipient=community.organiser, payload={})  # personal
    assert len(target.received) == 1
    verified = target.verified[0]
    assert verified["type"] == "ledger.posted" and verified["data"]["amount"] == 5000
    assert verified["data"]["community"] == community.slug and verified["data"]["event_id"] == event.pk
    headers = target.received[0]["headers"]
    assert headers["webhook-id"] == f"msg_{event.pk}_{subscription.pk}"
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "succeeded" and delivery.attempts == 1 and delivery.last_status_code == 204

    # a second run of the job for the same event sends nothing twice
    webhooks.queue_event_deliveries(event)
    assert len(target.received) == 1 and WebhookDelivery.objects.count() == 1


def test_failures_are_retried_on_the_backoff_schedule_then_replayed(community, receiver, django_capture_on_commit_callbacks):
    target = receiver(statuses=[500, 503])
    subscription = _subscribe(community, target.url)
    target.secret = subscription.secret
    start = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        publish_event(name="ledger.posted", community=community, payload={"n": 1})
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending" and delivery.attempts == 1 and delivery.last_status_code == 500
    assert timedelta(seconds=4) <= delivery.next_attempt_at - start <= timedelta(seconds=15)

    assert webhooks.deliver_due(now=start + timedelta(seconds=1)) == 0  # not yet due
    webhooks.deliver_due(now=delivery.next_attempt_at)
    delivery.refresh_from_db()
    assert delivery.attempts == 2 and delivery.status == "pending" and delivery.last_status_code == 503
    due = delivery.next_attempt_at
    webhooks.deliver_due(now=due)
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.attempts == 3
    assert len(target.verified) == 3 and {h["headers"]["webhook-id"] for h in target.received} == {delivery.message_id}

    with django_capture_on_commit_callbacks(execute=True):
        replay = webhooks.replay_delivery(actor=community.organiser, community=community, delivery_id=delivery.pk)
    replay.refresh_from_db()
    assert replay.replay_of_id == delivery.pk and replay.status == "succeeded"
    assert target.received[-1]["headers"]["webhook-id"] == delivery.message_id and len(target.verified) == 4
    assert AuditEntry.objects.filter(action="webhook.replayed").count() == 1


def test_schedule_gives_up_within_24_hours_and_disables_with_a_notice(community, receiver, django_capture_on_commit_callbacks):
    assert sum(webhooks.RETRY_SCHEDULE, timedelta()) <= timedelta(hours=24)
    target = receiver(statuses=[500] * 20)
    _subscribe(community, target.url, types=["*"])
    with django_capture_on_commit_callbacks(execute=True):
        publish_event(name="market.sold", community=community, payload={})
    delivery = WebhookDelivery.objects.get()
    attempts = 1
    while delivery.status == "pending":
        webhooks.deliver_due(now=delivery.next_attempt_at)
        delivery.refresh_from_db()
        attempts += 1
    assert delivery.status == "failed" and delivery.attempts == attempts == len(webhooks.RETRY_SCHEDULE) + 1
    assert delivery.next_attempt_at is None
    subscription = WebhookSubscription.objects.get()
    assert subscription.disabled_at is not None
    notice = Notification.objects.get(recipient=community.organiser, kind="webhook_disabled")
    assert target.url in notice.title
    assert AuditEntry.objects.filter(action="webhook.auto_disabled").count() == 1
    # disabled: new events are not queued, and replay asks to turn it back on first
    with django_capture_on_commit_callbacks(execute=True):
        publish_event(name="market.sold", community=community, payload={})
    assert WebhookDelivery.objects.count() == 1
    from pumasi.core.errors import Conflict

    with pytest.raises(Conflict):
        webhooks.replay_delivery(actor=community.organiser, community=community, delivery_id=delivery.pk)


def test_unreachable_receiver_is_logged_not_raised(community, django_capture_on_commit_callbacks):
    _subscribe(community, "http://127.0.0.1:9/nothing-listens")
    with django_capture_on_commit_callbacks(execute=True):
        publish_event(name="ledger.posted", community=community, payload={})
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending" and delivery.last_status_code is None and delivery.last_error


def test_subscriptions_validate_and_need_an_organiser(community, member_of, api_client_for):
    member = member_of(community)
    with pytest.raises(PermissionDenied):
        webhooks.create_subscription(actor=member, community=community, url="https://x.example/h", event_types=["*"])
    with pytest.raises(InvalidInput) as bad:
        webhooks.create_subscription(actor=community.organiser, community=community, url="ftp://x", event_types=[])
    assert set(bad.value.field_errors) == {"url", "event_types"}
    api = api_client_for(community.organiser)
    answer = api.post(f"/api/v1/communities/{community.slug}/webhooks", {"url": "https://shop.example/h",
                                                                          "event_types": ["ledger.posted"]},
                      content_type="application/json")
    assert answer.status_code == 201 and answer.json()["secret"].startswith("whsec_")
    listed = api.get(f"/api/v1/communities/{community.slug}/webhooks").json()
    assert "secret" not in listed["items"][0]
    off = api.patch(f"/api/v1/communities/{community.slug}/webhooks/{answer.json()['id']}", {"enabled": False},
                    content_type="application/json")
    assert off.status_code == 200 and off.json()["disabled_at"]
    outsider = api_client_for(member).get(f"/api/v1/communities/{community.slug}/webhooks")
    assert outsider.status_code == 403


# --- Events in ---------------------------------------------------------------------------------------


def _signed(endpoint, body: dict, *, msg_id="msg_1", timestamp=None, secret=None):
    raw = json.dumps(body)
    timestamp = int(time.time()) if timestamp is None else timestamp
    # signed by the independent library, as a company system would
    from datetime import UTC, datetime

    signature = Webhook(secret or endpoint.secret).sign(msg_id, datetime.fromtimestamp(timestamp, tz=UTC), raw)
    return raw, {"HTTP_WEBHOOK_ID": msg_id, "HTTP_WEBHOOK_TIMESTAMP": str(timestamp), "HTTP_WEBHOOK_SIGNATURE": signature}


def test_inbound_events_are_verified_deduplicated_and_dispatched(community, member_of):
    member = member_of(community, email="maker@example.com")
    endpoint = webhooks.create_inbound_endpoint(actor=community.organiser, community=community, name="ERP")
    url = f"/api/v1/hooks/in/{endpoint.pk}"
    message = {"type": "member.message", "data": {"email": "maker@example.com", "title": "Production started",
                                                  "body": "Your design is on the line.", "url": "/c/x/"}}
    raw, headers = _signed(endpoint, message)
    answer = Client().post(url, raw, content_type="application/json", **headers)
    assert answer.status_code == 200, answer.content
    assert answer.json()["status"] == "accepted"
    notice = Notification.objects.get(recipient=member)
    assert notice.title == "Production started" and notice.kind == "company_message"
    assert answer.json()["result"] == {"notification_id": notice.pk}

    again = Client().post(url, raw, content_type="application/json", **headers)
    assert again.json()["status"] == "duplicate" and Notification.objects.count() == 1

    changed, headers2 = _signed(endpoint, {**message, "data": {**message["data"], "title": "Other"}})
    conflict = Client().post(url, changed, content_type="application/json", **headers2)
    assert conflict.status_code == 409 and conflict["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize("case", ["bad_signature", "old_timestamp", "wrong_secret", "missing_headers"])
def test_inbound_refuses_bad_signatures_and_old_timestamps(community, case):
    endpoint = webhooks.create_inbound_endpoint(actor=community.organiser, community=community, name="ERP")
    message = {"type": "member.message", "data": {"email": "x@example.com", "title": "t"}}
    if case == "old_timestamp":
        raw, headers = _signed(endpoint, message, timestamp=int(time.time()) - 600)
    elif case == "wrong_secret":
        raw, headers = _signed(endpoint, message, secret=webhooks.new_secret())
    else:
        raw, headers = _signed(endpoint, message)
        if case == "bad_signature":
            raw = raw.replace('"t"', '"tampered"')
        else:
            headers = {}
    answer = Client().post(f"/api/v1/hooks/in/{endpoint.pk}", raw, content_type="application/json", **headers)
    assert answer.status_code == 401 and answer.json()["code"] == "bad_signature"
    assert not InboundMessage.objects.exists()


def test_inbound_refuses_unknown_types_and_bad_data_and_keeps_nothing(community):
    endpoint = webhooks.create_inbound_endpoint(actor=community.organiser, community=community, name="ERP")
    raw, headers = _signed(endpoint, {"type": "nope", "data": {}})
    answer = Client().post(f"/api/v1/hooks/in/{endpoint.pk}", raw, content_type="application/json", **headers)
    assert answer.status_code == 422 and "type" in answer.json()["errors"]
    raw, headers = _signed(endpoint, {"type": "member.message", "data": {"email": "nobody@example.com", "title": ""}},
                           msg_id="msg_2")
    answer = Client().post(f"/api/v1/hooks/in/{endpoint.pk}", raw, content_type="application/json", **headers)
    assert answer.status_code == 422 and set(answer.json()["errors"]) == {"data.email", "data.title"}
    assert not InboundMessage.objects.exists() and not Notification.objects.exists()
    assert Client().post("/api/v1/hooks/in/999999", raw, content_type="application/json", **headers).status_code == 404
    assert not mail.outbox


def test_other_apps_register_inbound_handlers(community):
    seen = []

    @webhooks.register_inbound_handler("stock.received")
    def handle(*, community, data, message_id):
        seen.append((community.slug, data["sku"], message_id))
        return {"ok": True}

    endpoint = webhooks.create_inbound_endpoint(actor=community.organiser, community=community, name="WMS")
    raw, headers = _signed(endpoint, {"type": "stock.received", "data": {"sku": "TEE-1"}}, msg_id="msg_stock")
    try:
        answer = Client().post(f"/api/v1/hooks/in/{endpoint.pk}", raw, content_type="application/json", **headers)
    finally:
        webhooks._inbound_handlers.pop("stock.received", None)
    assert answer.status_code == 200 and answer.json()["result"] == {"ok": True}
    assert seen == [(community.slug, "TEE-1", "msg_stock")]
