"""Audit log, the domain-event log and personal access tokens."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class AuditEntry(models.Model):
    """One state change: who did what to which object, in which community, and what changed."""

    community = models.ForeignKey(
        "communities.Community", null=True, blank=True, on_delete=models.CASCADE, related_name="audit_entries"
    )
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=80)
    object_type = models.CharField(max_length=80)
    object_id = models.CharField(max_length=64)
    changes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["community", "-id"])]
        verbose_name = _("audit entry")

    def __str__(self) -> str:
        return f"{self.action} {self.object_type}#{self.object_id}"


class Event(models.Model):
    """A domain event, written in the same transaction as the change it reports.

    The row is the outbox: live streams, jobs and (later) webhooks read it after commit,
    and a reconnecting stream resumes from its id, so nothing depends on one process's memory.
    """

    name = models.CharField(max_length=80)
    community = models.ForeignKey(
        "communities.Community", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # When set, only this person sees the event on their stream (a personal notification).
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["community", "id"]), models.Index(fields=["recipient", "id"])]

    def __str__(self) -> str:
        return f"{self.name}#{self.pk}"


class ApiToken(models.Model):
    """A personal access token. Only a SHA-256 of the secret is stored; the secret is shown once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, help_text="shown to identify the token; not secret")
    digest = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~models.Q(name=""), name="apitoken_name_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


# --- Open platform: community policy, OpenID Connect clients, scoped grants --------------------


class CommunityPolicy(models.Model):
    """Security settings of a community that other parts of the platform enforce."""

    community = models.OneToOneField("communities.Community", on_delete=models.CASCADE, related_name="policy")
    organisers_need_mfa = models.BooleanField(_("organisers must use two-factor sign-in"), default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("community policy")
        verbose_name_plural = _("community policies")

    def __str__(self) -> str:
        return f"policy of {self.community}"


class OidcClient(models.Model):
    """A client application (a company's shop or ERP) registered by a community's organisers.

    The OAuth data lives in oauth2_provider's Application; this row says which community it
    belongs to, which scopes it may ask for, and whether it was disabled.
    """

    community = models.ForeignKey("communities.Community", on_delete=models.CASCADE, related_name="oidc_clients")
    application = models.OneToOneField(
        "oauth2_provider.Application", null=True, blank=True, on_delete=models.SET_NULL, related_name="pumasi_client"
    )
    name = models.CharField(_("name"), max_length=100)
    client_id = models.CharField(max_length=100, unique=True)
    allowed_scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    disabled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=~models.Q(name=""), name="oidcclient_name_not_empty")]
        verbose_name = _("client application")

    def __str__(self) -> str:
        return f"{self.name} ({self.community})"


class ScopedGrant(models.Model):
    """A right granted to one person in one community, e.g. `production:product:12`.

    Client applications of the community see active grants in the `pumasi_grants` claim; revoking
    one ends that person's tokens for the community's applications at once.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="scoped_grants")
    community = models.ForeignKey("communities.Community", on_delete=models.CASCADE, related_name="scoped_grants")
    scope = models.CharField(max_length=120)
    note = models.CharField(max_length=200, blank=True)
    granted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "community", "scope"], condition=models.Q(revoked_at__isnull=True),
                                    name="scopedgrant_one_active"),
            models.CheckConstraint(condition=models.Q(scope__regex=r"^[a-z][a-z0-9_-]*(:[A-Za-z0-9_.-]+)+$"),
                                   name="scopedgrant_scope_format"),
        ]
        verbose_name = _("scoped grant")

    def __str__(self) -> str:
        return f"{self.scope} for {self.user}"


# --- Webhooks out and events in ----------------------------------------------------------------


class WebhookSubscription(models.Model):
    """Deliver a community's events of the listed types to a URL, signed per Standard Webhooks."""

    community = models.ForeignKey("communities.Community", on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(_("URL"), max_length=500)
    description = models.CharField(_("description"), max_length=200, blank=True)
    event_types = models.JSONField(default=list, help_text="event names, or ['*'] for all")
    secret = models.CharField(max_length=80)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(url__startswith="http://") | models.Q(url__startswith="https://"),
                                   name="webhook_url_http"),
            models.CheckConstraint(condition=models.Q(secret__startswith="whsec_"), name="webhook_secret_prefix"),
        ]
        verbose_name = _("webhook")

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Delivered")
        FAILED = "failed", _("Failed")

    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(Event, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    message_id = models.CharField(max_length=64)
    event_type = models.CharField(max_length=80)
    body = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    replay_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replays")
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["subscription", "event"], condition=models.Q(replay_of__isnull=True),
                                    name="webhookdelivery_once_per_event"),
            models.CheckConstraint(condition=models.Q(status__in=["pending", "succeeded", "failed"]),
                                   name="webhookdelivery_status_valid"),
            models.CheckConstraint(condition=~models.Q(status="pending") | models.Q(next_attempt_at__isnull=False),
                                   name="webhookdelivery_pending_has_next"),
        ]
        indexes = [models.Index(fields=["subscription", "-id"])]

    def __str__(self) -> str:
        return f"{self.event_type} -> {self.subscription_id} ({self.status})"


class InboundEndpoint(models.Model):
    """A signed entry point through which a company's systems post events into a community."""

    community = models.ForeignKey("communities.Community", on_delete=models.CASCADE, related_name="inbound_endpoints")
    name = models.CharField(_("name"), max_length=100)
    secret = models.CharField(max_length=80)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    disabled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~models.Q(name=""), name="inbound_name_not_empty"),
            models.CheckConstraint(condition=models.Q(secret__startswith="whsec_"), name="inbound_secret_prefix"),
        ]

    def __str__(self) -> str:
        return self.name


class InboundMessage(models.Model):
    """One accepted inbound message; its webhook-id makes a redelivery harmless."""

    endpoint = models.ForeignKey(InboundEndpoint, on_delete=models.CASCADE, related_name="messages")
    message_id = models.CharField(max_length=100)
    event_type = models.CharField(max_length=80)
    payload = models.JSONField(default=dict)
    result = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["endpoint", "message_id"], name="inbound_message_once")]

    def __str__(self) -> str:
        return f"{self.event_type} {self.message_id}"


# --- Notifications, follows ---------------------------------------------------------------------


class Notification(models.Model):
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    community = models.ForeignKey("communities.Community", null=True, blank=True, on_delete=models.CASCADE,
                                  related_name="+")
    kind = models.CharField(max_length=60)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=500, blank=True)
    event = models.ForeignKey(Event, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    # None: not (yet) mailed; set once it went out in an instant mail or a digest, or was skipped.
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["recipient", "-id"]),
            models.Index(fields=["recipient"], condition=models.Q(read_at__isnull=True), name="notification_unread"),
            models.Index(fields=["emailed_at"], condition=models.Q(emailed_at__isnull=True), name="notification_unmailed"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["recipient", "event", "kind"], condition=models.Q(event__isnull=False),
                                    name="notification_once_per_event"),
            models.CheckConstraint(condition=~models.Q(title=""), name="notification_title_not_empty"),
        ]

    def __str__(self) -> str:
        return self.title


class NotificationPreference(models.Model):
    class Email(models.TextChoices):
        INSTANT = "instant", _("Instantly")
        DAILY = "daily", _("Daily digest")
        NEVER = "never", _("Never")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_prefs")
    kind = models.CharField(max_length=60)
    email = models.CharField(max_length=10, choices=Email.choices, default=Email.DAILY)
    # Web Push to the person's devices for this kind; on unless turned off (no device, no push).
    push = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "kind"], name="notificationpref_once"),
            models.CheckConstraint(condition=models.Q(email__in=["instant", "daily", "never"]),
                                   name="notificationpref_email_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.email}"


class DigestRun(models.Model):
    """One digest period that was built, so a second run for the same period does nothing."""

    period = models.CharField(max_length=20, unique=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    mails_sent = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return self.period


class Follow(models.Model):
    """A person follows a member, a community, or any other object (generic)."""

    follower = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="follows")
    content_type = models.ForeignKey("contenttypes.ContentType", on_delete=models.CASCADE, related_name="+")
    object_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["follower", "content_type", "object_id"], name="follow_once")]
        indexes = [models.Index(fields=["content_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.follower_id} follows {self.content_type_id}:{self.object_id}"


# --- Web Push ----------------------------------------------------------------------------------


class PushSubscription(models.Model):
    """One browser's Web Push subscription (W3C Push API): where to post, and the keys the
    browser gave to encrypt for it (RFC 8291). The endpoint is a capability URL of the push service."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="push_subscriptions")
    endpoint = models.CharField(max_length=1000, unique=True)
    p256dh = models.CharField(max_length=100, help_text="base64url of the browser's P-256 public key (65 bytes)")
    auth = models.CharField(max_length=40, help_text="base64url of the browser's 16-byte auth secret")
    label = models.CharField(_("device"), max_length=200, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveIntegerField(default=0, help_text="failed pushes since the last success")
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(endpoint__startswith="https://")
                                   | models.Q(endpoint__startswith="http://"), name="pushsubscription_endpoint_http"),
        ]
        indexes = [models.Index(fields=["user"], condition=models.Q(disabled_at__isnull=True),
                                name="pushsubscription_active")]
        verbose_name = _("push subscription")

    def __str__(self) -> str:
        return f"push #{self.pk} of {self.user_id}"


class PushDelivery(models.Model):
    """One notification pushed to one subscription. The pair is unique, so a job that runs again
    for the same notification pushes nothing twice; the row also keeps what the push service said."""

    subscription = models.ForeignKey(PushSubscription, on_delete=models.CASCADE, related_name="deliveries")
    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["subscription", "notification"], name="pushdelivery_once")]

    def __str__(self) -> str:
        return f"notification {self.notification_id} -> push {self.subscription_id}"


# --- Idempotency keys ---------------------------------------------------------------------------


class IdempotencyKey(models.Model):
    """The stored answer to a POST sent with an `Idempotency-Key` header (IETF httpapi draft).

    A row is written in the same transaction as the work it guards, so a committed row always
    holds the finished answer; a second request with the same key waits on the unique index
    until the first commits, then gets the stored answer. Rows expire after 24 hours.
    """

    owner = models.CharField(max_length=80, help_text="token:<digest prefix>, user:<id> or anon")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path, query and body")
    # Empty only inside the guarded transaction, before the answer is known; never committed so.
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    response_body = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "key"], name="idempotencykey_once_per_owner"),
            models.CheckConstraint(condition=~models.Q(key=""), name="idempotencykey_key_not_empty"),
            models.CheckConstraint(condition=models.Q(status_code__isnull=True)
                                   | models.Q(status_code__gte=200, status_code__lt=300),
                                   name="idempotencykey_success_only"),
        ]

    def __str__(self) -> str:
        return f"{self.owner} {self.key}"


# --- Personal calendar feed ---------------------------------------------------------------------


class CalendarFeed(models.Model):
    """The secret in a person's private iCalendar URL of their bookings (/me/calendar/<token>.ics).

    Calendar clients cannot sign in, so the URL is the credential: it is kept readable (shown again
    on the settings page) and replaced, old URL dead at once, when the person rotates it.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_feed")
    token = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    rotated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=~models.Q(token=""), name="calendarfeed_token_not_empty")]
        verbose_name = _("calendar feed")

    def __str__(self) -> str:
        return f"calendar feed of user {self.user_id}"
