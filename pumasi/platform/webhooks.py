"""Webhooks out and events in, both signed per the Standard Webhooks specification
(https://www.standardwebhooks.com): `webhook-id`, `webhook-timestamp` and
`webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">` with a `whsec_` secret.

Out: each community event that a subscription wants becomes a WebhookDelivery row (the log),
attempted from the job queue; failures are retried on RETRY_SCHEDULE (about 23.6 h in all) by
one periodic job; a subscription whose delivery exhausts the schedule without any success since
is disabled and its organisers are told. In: the company's systems post signed events to an
InboundEndpoint; each accepted message is stored once (by webhook-id) and handed to the handler
registered for its type.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta
from urllib.parse import urlparse

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from pumasi.communities import permissions
from pumasi.communities.models import Community
from pumasi.core.errors import Conflict, DomainError, InvalidInput, NotFound
from pumasi.core.events import publish_event
from pumasi.platform.models import (
    Event,
    InboundEndpoint,
    InboundMessage,
    WebhookDelivery,
    WebhookSubscription,
)
from pumasi.platform.services import record_audit
from pumasi.platform.tasks import on_event_job

logger = logging.getLogger("pumasi.webhooks")

# Delay before attempt n+1 after attempt n failed (attempt 1 is immediate). Sum ≈ 23 h 35 min,
# so a message is given up within 24 h of the event, as the issue asks.
RETRY_SCHEDULE = [
    timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
    timedelta(hours=5), timedelta(hours=8), timedelta(hours=8),
]
TIMEOUT_SECONDS = 10
TIMESTAMP_TOLERANCE = 5 * 60
USER_AGENT = "pumasi-webhooks/1"


# --- Signing (the scheme, both ways) -----------------------------------------------------------


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


def sign(secret: str, message_id: str, timestamp: int, body: str) -> str:
    digest = hmac.new(_key(secret), f"{message_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class BadSignature(DomainError):
    status = 401
    code = "bad_signature"


def verify(secret: str, headers, body: str, *, now: float | None = None) -> str:
    """Check the three headers against the body; return the message id or raise BadSignature."""
    message_id = headers.get("webhook-id") or ""
    raw_timestamp = headers.get("webhook-timestamp") or ""
    signatures = headers.get("webhook-signature") or ""
    if not message_id or not raw_timestamp or not signatures:
        raise BadSignature("Missing webhook-id, webhook-timestamp or webhook-signature header.")
    try:
        timestamp = int(raw_timestamp)
    except ValueError as exc:
        raise BadSignature("webhook-timestamp must be whole seconds since 1970.") from exc
    now = time.time() if now is None else now
    if abs(now - timestamp) > TIMESTAMP_TOLERANCE:
        raise BadSignature("webhook-timestamp is more than 5 minutes away from now; the message is refused.")
    expected = sign(secret, message_id, timestamp, body).split(",", 1)[1]
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected.encode()):  # headers may hold any text
            return message_id
    raise BadSignature("No valid signature for this body.")


# --- Subscriptions ------------------------------------------------------------------------------


def _validate_url(url: str) -> list[str]:
    parsed = urlparse(url or "")
    if parsed.scheme not in {"http", "https"} or not parsed.netloc or len(url) > 500:
        return ["Give an absolute http(s) URL of at most 500 characters."]
    return []


def _validate_event_types(event_types) -> list[str]:
    if not isinstance(event_types, list) or not event_types:
        return ["Choose at least one event type, or '*' for all."]
    bad = [t for t in event_types if not isinstance(t, str) or not t or len(t) > 80 or " " in t]
    return [f"Not an event type: {bad!r}."] if bad else []


def create_subscription(*, actor, community: Community, url: str, event_types: list[str],
                        description: str = "") -> WebhookSubscription:
    permissions.require(actor, "edit", community)
    errors: dict[str, list[str]] = {}
    if e := _validate_url(url):
        errors["url"] = e
    if e := _validate_event_types(event_types):
        errors["event_types"] = e
    if len(description or "") > 200:
        errors["description"] = ["At most 200 characters."]
    if errors:
        raise InvalidInput("The webhook was not created.", field_errors=errors)
    with transaction.atomic():
        subscription = WebhookSubscription.objects.create(
            community=community, url=url, event_types=sorted(set(event_types)), description=description or "",
            secret=new_secret(), created_by=actor,
        )
        record_audit(actor=actor, action="webhook.created", obj=subscription, community=community,
                     changes={"url": url, "event_types": subscription.event_types})
    return subscription


def subscription_for(actor, community: Community, subscription_id: int) -> WebhookSubscription:
    permissions.require(actor, "edit", community)
    found = WebhookSubscription.objects.filter(community=community, pk=subscription_id).first()
    if found is None:
        raise NotFound("No such webhook.")
    return found


def set_subscription_enabled(*, actor, community: Community, subscription_id: int, enabled: bool) -> WebhookSubscription:
    with transaction.atomic():
        subscription = subscription_for(actor, community, subscription_id)
        subscription = WebhookSubscription.objects.select_for_update().get(pk=subscription.pk)
        if enabled and subscription.disabled_at is not None:
            subscription.disabled_at = None
            subscription.disabled_reason = ""
        elif not enabled and subscription.disabled_at is None:
            subscription.disabled_at = timezone.now()
            subscription.disabled_reason = "disabled by an organiser"
        else:
            return subscription
        subscription.save(update_fields=["disabled_at", "disabled_reason"])
        record_audit(actor=actor, action="webhook.enabled" if enabled else "webhook.disabled", obj=subscription,
                     community=community)
    return subscription


def delete_subscription(*, actor, community: Community, subscription_id: int) -> None:
    with transaction.atomic():
        subscription = subscription_for(actor, community, subscription_id)
        record_audit(actor=actor, action="webhook.deleted", obj=subscription, community=community,
                     changes={"url": subscription.url})
        subscription.delete()


def subscriptions_of(community: Community):
    return WebhookSubscription.objects.filter(community=community).order_by("-id")


def deliveries_of(subscription: WebhookSubscription):
    return WebhookDelivery.objects.filter(subscription=subscription).order_by("-id")


# --- Delivery -------------------------------------------------------------------------------------


def wants(subscription: WebhookSubscription, event_name: str) -> bool:
    return "*" in subscription.event_types or event_name in subscription.event_types


def message_body(event: Event) -> str:
    return json.dumps(
        {"type": event.name, "timestamp": event.created_at.isoformat(),
         "data": {**(event.payload or {}), "community": event.community.slug if event.community else None,
                  "event_id": event.pk}},
        cls=DjangoJSONEncoder, ensure_ascii=False, separators=(",", ":"),
    )


@on_event_job("*")
def queue_event_deliveries(event: Event) -> None:
    """Job-side: one delivery per wanting subscription, then a first attempt. Safe to run twice:
    the (subscription, event) pair is unique, and only pending, due deliveries are attempted."""
    if event.community_id is None or event.recipient_id is not None:
        return  # personal events never leave pumasi
    subscriptions = [s for s in WebhookSubscription.objects.filter(community_id=event.community_id, disabled_at__isnull=True)
                     if wants(s, event.name)]
    if not subscriptions:
        return
    body = message_body(event)
    now = timezone.now()
    created = []
    for subscription in subscriptions:
        try:
            with transaction.atomic():
                created.append(WebhookDelivery.objects.create(
                    subscription=subscription, event=event, message_id=f"msg_{event.pk}_{subscription.pk}",
                    event_type=event.name, body=body, next_attempt_at=now,
                ))
        except IntegrityError:
            continue  # already queued by an earlier run of this job
    for delivery in created:
        attempt_delivery(delivery.pk, now=now)


def _post(url: str, headers: dict[str, str], body: str) -> tuple[int | None, str]:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None  # a redirect is a failure; the subscriber should fix the URL

    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")
    try:
        with opener.open(request, timeout=TIMEOUT_SECONDS) as response:
            return response.status, ""
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return None, str(getattr(exc, "reason", exc))[:300]


def attempt_delivery(delivery_id: int, *, now: datetime | None = None) -> WebhookDelivery | None:
    """Make one attempt if the delivery is pending and due. A compare-and-set on next_attempt_at
    claims it first, so two workers never post the same attempt."""
    now = now or timezone.now()
    delivery = WebhookDelivery.objects.select_related("subscription").filter(pk=delivery_id).first()
    if delivery is None or delivery.status != WebhookDelivery.Status.PENDING or delivery.next_attempt_at > now:
        return delivery
    subscription = delivery.subscription
    lease = now + timedelta(seconds=TIMEOUT_SECONDS * 3)
    claimed = WebhookDelivery.objects.filter(
        pk=delivery.pk, status=WebhookDelivery.Status.PENDING, next_attempt_at=delivery.next_attempt_at
    ).update(next_attempt_at=lease)
    if not claimed:
        return delivery
    if subscription.disabled_at is not None:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=WebhookDelivery.Status.FAILED, next_attempt_at=None, last_error="webhook disabled")
        return WebhookDelivery.objects.get(pk=delivery.pk)
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json", "user-agent": USER_AGENT, "webhook-id": delivery.message_id,
        "webhook-timestamp": str(timestamp), "webhook-signature": sign(subscription.secret, delivery.message_id,
                                                                       timestamp, delivery.body),
    }
    status_code, error = _post(subscription.url, headers, delivery.body)
    ok = status_code is not None and 200 <= status_code < 300
    attempts = delivery.attempts + 1
    with transaction.atomic():
        fields = {"attempts": attempts, "last_status_code": status_code, "last_error": error}
        if ok:
            fields.update(status=WebhookDelivery.Status.SUCCEEDED, next_attempt_at=None, delivered_at=timezone.now())
        elif attempts <= len(RETRY_SCHEDULE):
            fields.update(next_attempt_at=now + RETRY_SCHEDULE[attempts - 1])
        else:
            fields.update(status=WebhookDelivery.Status.FAILED, next_attempt_at=None)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(**fields)
        delivery.refresh_from_db()
        if delivery.status == WebhookDelivery.Status.FAILED:
            _disable_if_persistently_failing(delivery)
    return delivery


def _disable_if_persistently_failing(delivery: WebhookDelivery) -> None:
    """A delivery gave up after the whole schedule; if nothing succeeded since it was created,
    the receiver has been down for about a day: stop sending and tell the organisers."""
    subscription = WebhookSubscription.objects.select_for_update().get(pk=delivery.subscription_id)
    if subscription.disabled_at is not None:
        return
    if subscription.deliveries.filter(status=WebhookDelivery.Status.SUCCEEDED, delivered_at__gte=delivery.created_at).exists():
        return
    subscription.disabled_at = timezone.now()
    subscription.disabled_reason = "every attempt failed for about 24 hours"
    subscription.save(update_fields=["disabled_at", "disabled_reason"])
    community = subscription.community
    record_audit(actor=None, action="webhook.auto_disabled", obj=subscription, community=community,
                 changes={"url": subscription.url, "delivery": delivery.pk})
    from pumasi.platform.notifications import notify_organisers

    notify_organisers(
        community=community, kind="webhook_disabled",
        title=f"Webhook to {subscription.url} was turned off",
        body="pumasi could not deliver to it for about 24 hours. Fix the receiver, then turn the webhook back on "
             "and replay the failed deliveries.",
        url=f"/c/{community.slug}/platform/webhooks/",
    )


def deliver_due(*, now: datetime | None = None, limit: int = 500) -> int:
    """Attempt every pending delivery whose time has come. Returns how many were attempted."""
    now = now or timezone.now()
    due = list(WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now)
               .order_by("next_attempt_at").values_list("pk", flat=True)[:limit])
    for delivery_id in due:
        try:
            attempt_delivery(delivery_id, now=now)
        except Exception:  # one broken delivery must not hold up the others
            logger.exception("webhook delivery %s failed unexpectedly", delivery_id)
    return len(due)


@db_periodic_task(crontab(minute="*"))
def retry_due_webhooks() -> None:
    deliver_due()


@db_task()
def attempt_delivery_job(delivery_id: int) -> None:
    attempt_delivery(delivery_id)


def replay_delivery(*, actor, community: Community, delivery_id: int) -> WebhookDelivery:
    """Send a logged message again (same webhook-id, so the receiver can tell it is the same message)."""
    permissions.require(actor, "edit", community)
    original = WebhookDelivery.objects.select_related("subscription").filter(
        pk=delivery_id, subscription__community=community).first()
    if original is None:
        raise NotFound("No such delivery.")
    if original.subscription.disabled_at is not None:
        raise Conflict("Turn the webhook back on before replaying.", field_errors={"subscription": ["disabled"]})
    with transaction.atomic():
        replay = WebhookDelivery.objects.create(
            subscription=original.subscription, event=original.event, message_id=original.message_id,
            event_type=original.event_type, body=original.body, next_attempt_at=timezone.now(), replay_of=original,
        )
        record_audit(actor=actor, action="webhook.replayed", obj=replay, community=community,
                     changes={"original": original.pk})
        transaction.on_commit(lambda: attempt_delivery_job(replay.pk))
    return replay


# --- Events in ---------------------------------------------------------------------------------------

InboundHandler = Callable[..., dict | None]
_inbound_handlers: dict[str, InboundHandler] = {}


def register_inbound_handler(event_type: str) -> Callable[[InboundHandler], InboundHandler]:
    """Register the handler for an inbound event type. It is called inside the transaction that
    records the message, as handler(community=, data=, message_id=), may raise DomainError to refuse
    the message (nothing is kept), and returns a JSON-able result that is sent back to the caller."""

    def register(handler: InboundHandler) -> InboundHandler:
        _inbound_handlers[event_type] = handler
        return handler

    return register


def inbound_types() -> list[str]:
    return sorted(_inbound_handlers)


def create_inbound_endpoint(*, actor, community: Community, name: str) -> InboundEndpoint:
    permissions.require(actor, "edit", community)
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise InvalidInput("The endpoint was not created.", field_errors={"name": ["Give a name of 1 to 100 characters."]})
    with transaction.atomic():
        endpoint = InboundEndpoint.objects.create(community=community, name=name, secret=new_secret(), created_by=actor)
        record_audit(actor=actor, action="inbound_endpoint.created", obj=endpoint, community=community,
                     changes={"name": name})
    return endpoint


def inbound_endpoints_of(community: Community):
    return InboundEndpoint.objects.filter(community=community).order_by("-id")


def receive(*, endpoint_id: int, headers, body: bytes) -> tuple[InboundMessage, bool]:
    """Verify, record and dispatch one inbound message. Returns (message, duplicate)."""
    endpoint = InboundEndpoint.objects.select_related("community").filter(pk=endpoint_id, disabled_at__isnull=True).first()
    if endpoint is None:
        raise NotFound("No such endpoint.")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput("The body must be UTF-8 JSON.", field_errors={"body": ["not UTF-8"]}) from exc
    message_id = verify(endpoint.secret, headers, text)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput("The body is not JSON.", field_errors={"body": [str(exc)]}) from exc
    errors: dict[str, list[str]] = {}
    if not isinstance(document, dict):
        raise InvalidInput("The body must be a JSON object.", field_errors={"body": ["expected an object"]})
    event_type = document.get("type")
    data = document.get("data", {})
    if not isinstance(event_type, str) or event_type not in _inbound_handlers:
        errors["type"] = [f"Unknown event type {event_type!r}. Known: {', '.join(inbound_types()) or 'none'}."]
    if not isinstance(data, dict):
        errors["data"] = ["Must be a JSON object."]
    if len(message_id) > 100:
        errors["webhook-id"] = ["At most 100 characters."]
    if errors:
        raise InvalidInput("The event was not accepted.", field_errors=errors)
    existing = InboundMessage.objects.filter(endpoint=endpoint, message_id=message_id).first()
    if existing is not None:
        if existing.payload != document:
            raise Conflict("This webhook-id was already used for a different message.",
                           field_errors={"webhook-id": ["reused with a different body"]})
        return existing, True
    try:
        with transaction.atomic():
            message = InboundMessage.objects.create(endpoint=endpoint, message_id=message_id, event_type=event_type,
                                                    payload=document)
            result = _inbound_handlers[event_type](community=endpoint.community, data=data, message_id=message_id) or {}
            message.result = result
            message.save(update_fields=["result"])
            record_audit(actor=None, action="inbound.received", obj=message, community=endpoint.community,
                         changes={"type": event_type, "endpoint": endpoint.pk})
            publish_event(name="platform.inbound_received", community=endpoint.community,
                          payload={"type": event_type, "message_id": message_id})
    except IntegrityError:
        # The same message raced in on another connection; answer as for a redelivery.
        existing = InboundMessage.objects.filter(endpoint=endpoint, message_id=message_id).first()
        if existing is None:
            raise
        return existing, True
    return message, False


@register_inbound_handler("member.message")
def _member_message(*, community: Community, data: dict, message_id: str) -> dict:
    """A company system tells a member something (production progress, shipping, a report)."""
    from django.contrib.auth import get_user_model

    from pumasi.platform.notifications import notify

    errors: dict[str, list[str]] = {}
    email = data.get("email")
    title = data.get("title")
    body = data.get("body", "")
    url = data.get("url", "")
    person = None
    if not isinstance(email, str) or not email:
        errors["data.email"] = ["The member's e-mail address is required."]
    else:
        person = get_user_model().objects.filter(email__iexact=email, memberships__community=community).first()
        if person is None:
            errors["data.email"] = ["No member of this community has this address."]
    if not isinstance(title, str) or not 1 <= len(title.strip()) <= 200:
        errors["data.title"] = ["A title of 1 to 200 characters is required."]
    if not isinstance(body, str) or len(body) > 5000:
        errors["data.body"] = ["At most 5000 characters of text."]
    if not isinstance(url, str) or len(url) > 500 or (url and not (url.startswith("https://") or url.startswith("/"))):
        errors["data.url"] = ["An https:// or site-relative address of at most 500 characters."]
    if errors:
        raise InvalidInput("The message was not accepted.", field_errors=errors)
    notification = notify(recipient=person, community=community, kind="company_message", title=title.strip(),
                          body=body, url=url)
    return {"notification_id": notification.pk}
