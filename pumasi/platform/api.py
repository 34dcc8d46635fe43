"""API for personal access tokens and community audit logs."""

from __future__ import annotations

from datetime import datetime

from ninja import Router, Schema, Status
from pydantic import Field

from pumasi.communities.selectors import community_for
from pumasi.core.api import require_scope
from pumasi.core.errors import PermissionDenied
from pumasi.core.pagination import paginate
from pumasi.platform import selectors, services

router = Router(tags=["platform"])


class TokenIn(Schema):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] = Field(min_length=1)
    expires_at: datetime | None = None


class TokenOut(Schema):
    id: int
    name: str
    prefix: str
    scopes: list[str]
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime


class TokenCreated(TokenOut):
    secret: str = Field(description="Shown once; store it now.")


class TokenPage(Schema):
    items: list[TokenOut]
    next_cursor: str | None


class AuditOut(Schema):
    id: int
    actor_id: int | None
    actor: str | None
    action: str
    object_type: str
    object_id: str
    changes: dict
    created_at: datetime

    @staticmethod
    def resolve_actor(obj) -> str | None:
        return obj.actor.name if obj.actor else None


class AuditPage(Schema):
    items: list[AuditOut]
    next_cursor: str | None


@router.get("/tokens", response=TokenPage, summary="My personal access tokens")
def list_tokens(request, cursor: str | None = None, limit: int = 50):
    return paginate(selectors.tokens_of(request.user), cursor=cursor, limit=limit)


@router.post("/tokens", response={201: TokenCreated}, summary="Create a token (the secret is shown once)")
def create_token(request, payload: TokenIn):
    # A token may not mint tokens: that would let a narrow token widen its own rights.
    if getattr(request, "api_token", None) is not None:
        raise PermissionDenied("Tokens are created from a signed-in browser session, not with another token.")
    token, secret = services.create_api_token(
        user=request.user, name=payload.name, scopes=payload.scopes, expires_at=payload.expires_at
    )
    token.secret = secret
    return Status(201, token)


@router.delete("/tokens/{token_id}", response=TokenOut, summary="Revoke a token")
def revoke_token(request, token_id: int):
    # Any token may revoke itself (a leaked one should be easy to kill); another token only with
    # the write scope, or a read-only token could end the person's other integrations.
    token = getattr(request, "api_token", None)
    if token is not None and token.pk != token_id:
        require_scope(request, "platform:write")
    return services.revoke_api_token(user=request.user, token_id=token_id)


@router.get("/communities/{slug}/audit", response=AuditPage, summary="A community's audit log (organisers)")
def community_audit(request, slug: str, cursor: str | None = None, limit: int = 50):
    require_scope(request, "audit:read")
    community = community_for(request.user, slug, "view_audit")
    return paginate(selectors.audit_entries(community), cursor=cursor, limit=limit)


# --- Open platform: OpenID Connect clients and scoped grants -----------------------------------

from django.contrib.auth import get_user_model  # noqa: E402

from pumasi.core.api import Problem  # noqa: E402
from pumasi.platform import notifications, oidc, webhooks  # noqa: E402

ERRORS = {401: Problem, 403: Problem, 404: Problem, 409: Problem, 422: Problem}


class OidcClientIn(Schema):
    name: str = Field(min_length=1, max_length=100)
    redirect_uris: list[str] = Field(min_length=1, max_length=20)
    scopes: list[str] | None = None
    confidential: bool = True


class OidcClientOut(Schema):
    id: int
    name: str
    client_id: str
    allowed_scopes: list[str]
    redirect_uris: list[str]
    created_at: datetime
    disabled_at: datetime | None

    @staticmethod
    def resolve_redirect_uris(obj) -> list[str]:
        return obj.application.redirect_uris.split() if obj.application else []


class OidcClientCreated(OidcClientOut):
    client_secret: str | None = Field(description="Shown once for confidential clients; store it now.")


class OidcClientPage(Schema):
    items: list[OidcClientOut]
    next_cursor: str | None


class ScopedGrantIn(Schema):
    user_id: int
    scope: str = Field(min_length=1, max_length=120)
    note: str = Field("", max_length=200)


class ScopedGrantOut(Schema):
    id: int
    user_id: int
    community: str
    scope: str
    note: str
    created_at: datetime
    revoked_at: datetime | None

    @staticmethod
    def resolve_community(obj) -> str:
        return obj.community.slug


class ScopedGrantPage(Schema):
    items: list[ScopedGrantOut]
    next_cursor: str | None


def _community_to_edit(request, slug: str, scope: str = "platform:write"):
    if request.method not in ("GET", "HEAD"):
        require_scope(request, scope)
    return community_for(request.user, slug, "edit")


@router.get("/communities/{slug}/oidc-clients", response={200: OidcClientPage, **ERRORS},
            summary="Client applications registered by a community (organisers)")
def list_oidc_clients(request, slug: str, cursor: str | None = None, limit: int = 50):
    community = _community_to_edit(request, slug)
    return paginate(oidc.clients_of_community(community).select_related("application"), cursor=cursor, limit=limit)


@router.post("/communities/{slug}/oidc-clients", response={201: OidcClientCreated, **ERRORS},
             summary="Register a client application (the secret is shown once)")
def register_oidc_client(request, slug: str, payload: OidcClientIn):
    community = _community_to_edit(request, slug)
    client, secret = oidc.register_client(actor=request.user, community=community, name=payload.name,
                                          redirect_uris=payload.redirect_uris, scopes=payload.scopes,
                                          confidential=payload.confidential)
    client.client_secret = secret
    return Status(201, client)


@router.delete("/communities/{slug}/oidc-clients/{client_id}", response={200: OidcClientOut, **ERRORS},
               summary="Disable a client application; all its tokens end at once")
def disable_oidc_client(request, slug: str, client_id: int):
    community = _community_to_edit(request, slug)
    return oidc.disable_client(actor=request.user, community=community, client_pk=client_id)


@router.get("/communities/{slug}/grants", response={200: ScopedGrantPage, **ERRORS}, summary="Scoped grants (organisers)")
def list_grants(request, slug: str, cursor: str | None = None, limit: int = 50):
    community = _community_to_edit(request, slug)
    return paginate(oidc.grants_of_community(community), cursor=cursor, limit=limit)


@router.post("/communities/{slug}/grants", response={201: ScopedGrantOut, **ERRORS},
             summary="Grant a member a scoped right, e.g. production:product:12")
def create_grant(request, slug: str, payload: ScopedGrantIn):
    community = _community_to_edit(request, slug)
    person = get_user_model().objects.filter(pk=payload.user_id).first()
    if person is None:
        raise oidc.InvalidInput("The right was not granted.", field_errors={"user_id": ["No such person."]})
    return Status(201, oidc.grant_scope(actor=request.user, community=community, user=person, scope=payload.scope,
                                        note=payload.note))


@router.delete("/communities/{slug}/grants/{grant_id}", response={200: ScopedGrantOut, **ERRORS},
               summary="Withdraw a scoped right; the person's tokens for the community's apps end at once")
def revoke_grant(request, slug: str, grant_id: int):
    community = _community_to_edit(request, slug)
    return oidc.revoke_grant(actor=request.user, community=community, grant_id=grant_id)


@router.get("/me/grants", response={200: ScopedGrantPage, **ERRORS}, summary="My active scoped rights")
def my_grants(request, cursor: str | None = None, limit: int = 50):
    query = oidc.ScopedGrant.objects.filter(user=request.user, revoked_at__isnull=True).select_related("community")
    token = getattr(request, "api_token", None)
    if isinstance(token, oidc.OAuthApiToken):
        # a client application sees only the rights of its own community, and only with "grants"
        if "grants" not in token.scopes:
            raise PermissionDenied("This token lacks the 'grants' scope.")
        client = oidc.client_of(token.access_token.application)
        query = query.filter(community=client.community)
    return paginate(query.order_by("-id"), cursor=cursor, limit=limit)


# --- Webhooks out, events in --------------------------------------------------------------------


class WebhookIn(Schema):
    url: str = Field(min_length=1, max_length=500)
    event_types: list[str] = Field(min_length=1, max_length=100)
    description: str = Field("", max_length=200)


class WebhookOut(Schema):
    id: int
    url: str
    description: str
    event_types: list[str]
    created_at: datetime
    disabled_at: datetime | None
    disabled_reason: str


class WebhookCreated(WebhookOut):
    secret: str = Field(description="The whsec_ signing secret; shown once.")


class WebhookPage(Schema):
    items: list[WebhookOut]
    next_cursor: str | None


class WebhookEnabledIn(Schema):
    enabled: bool


class WebhookDeliveryOut(Schema):
    id: int
    message_id: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str
    replay_of_id: int | None
    created_at: datetime
    delivered_at: datetime | None


class WebhookDeliveryPage(Schema):
    items: list[WebhookDeliveryOut]
    next_cursor: str | None


class InboundEndpointIn(Schema):
    name: str = Field(min_length=1, max_length=100)


class InboundEndpointOut(Schema):
    id: int
    name: str
    url: str
    created_at: datetime
    disabled_at: datetime | None

    @staticmethod
    def resolve_url(obj) -> str:
        return f"/api/v1/hooks/in/{obj.pk}"


class InboundEndpointCreated(InboundEndpointOut):
    secret: str


class InboundEndpointPage(Schema):
    items: list[InboundEndpointOut]
    next_cursor: str | None


class InboundAccepted(Schema):
    status: str
    message_id: str
    type: str
    result: dict


@router.get("/communities/{slug}/webhooks", response={200: WebhookPage, **ERRORS}, summary="Webhook subscriptions")
def list_webhooks(request, slug: str, cursor: str | None = None, limit: int = 50):
    community = _community_to_edit(request, slug)
    return paginate(webhooks.subscriptions_of(community), cursor=cursor, limit=limit)


@router.post("/communities/{slug}/webhooks", response={201: WebhookCreated, **ERRORS},
             summary="Subscribe a URL to event types (Standard Webhooks signing; the secret is shown once)")
def create_webhook(request, slug: str, payload: WebhookIn):
    community = _community_to_edit(request, slug)
    return Status(201, webhooks.create_subscription(actor=request.user, community=community, url=payload.url,
                                                    event_types=payload.event_types, description=payload.description))


@router.patch("/communities/{slug}/webhooks/{webhook_id}", response={200: WebhookOut, **ERRORS},
              summary="Turn a webhook on or off")
def set_webhook_enabled(request, slug: str, webhook_id: int, payload: WebhookEnabledIn):
    community = _community_to_edit(request, slug)
    return webhooks.set_subscription_enabled(actor=request.user, community=community, subscription_id=webhook_id,
                                             enabled=payload.enabled)


@router.delete("/communities/{slug}/webhooks/{webhook_id}", response={204: None, **ERRORS}, summary="Delete a webhook")
def delete_webhook(request, slug: str, webhook_id: int):
    community = _community_to_edit(request, slug)
    webhooks.delete_subscription(actor=request.user, community=community, subscription_id=webhook_id)
    return Status(204, None)


@router.get("/communities/{slug}/webhooks/{webhook_id}/deliveries", response={200: WebhookDeliveryPage, **ERRORS},
            summary="The delivery log of a webhook")
def list_deliveries(request, slug: str, webhook_id: int, cursor: str | None = None, limit: int = 50):
    community = _community_to_edit(request, slug)
    subscription = webhooks.subscription_for(request.user, community, webhook_id)
    return paginate(webhooks.deliveries_of(subscription), cursor=cursor, limit=limit)


@router.post("/communities/{slug}/webhook-deliveries/{delivery_id}/replay", response={201: WebhookDeliveryOut, **ERRORS},
             summary="Send a logged message again")
def replay_delivery(request, slug: str, delivery_id: int):
    community = _community_to_edit(request, slug)
    return Status(201, webhooks.replay_delivery(actor=request.user, community=community, delivery_id=delivery_id))


@router.get("/communities/{slug}/inbound-endpoints", response={200: InboundEndpointPage, **ERRORS},
            summary="Signed entry points for a company's systems")
def list_inbound(request, slug: str, cursor: str | None = None, limit: int = 50):
    community = _community_to_edit(request, slug)
    return paginate(webhooks.inbound_endpoints_of(community), cursor=cursor, limit=limit)


@router.post("/communities/{slug}/inbound-endpoints", response={201: InboundEndpointCreated, **ERRORS},
             summary="Create a signed entry point (the secret is shown once)")
def create_inbound(request, slug: str, payload: InboundEndpointIn):
    community = _community_to_edit(request, slug)
    return Status(201, webhooks.create_inbound_endpoint(actor=request.user, community=community, name=payload.name))


@router.post("/hooks/in/{endpoint_id}", auth=None, response={200: InboundAccepted, 400: Problem, **ERRORS},
             summary="Receive a signed event from a company system (Standard Webhooks headers)",
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
                 "type": "object", "required": ["type", "data"],
                 "properties": {"type": {"type": "string"}, "data": {"type": "object"}}}}}}})
def receive_inbound(request, endpoint_id: int):
    message, duplicate = webhooks.receive(endpoint_id=endpoint_id, headers=request.headers, body=request.body)
    return {"status": "duplicate" if duplicate else "accepted", "message_id": message.message_id,
            "type": message.event_type, "result": message.result}


# --- Notifications, follows, feeds ---------------------------------------------------------------


class UserNotificationOut(Schema):
    id: int
    kind: str
    title: str
    body: str
    url: str
    community: str | None
    created_at: datetime
    read_at: datetime | None

    @staticmethod
    def resolve_community(obj) -> str | None:
        return obj.community.slug if obj.community else None


class UserNotificationPage(Schema):
    items: list[UserNotificationOut]
    next_cursor: str | None


class NotificationsUnreadOut(Schema):
    unread: int


class NotificationsReadIn(Schema):
    ids: list[int] | None = Field(None, description="Leave out to mark all read.", max_length=1000)


class NotificationsReadOut(Schema):
    changed: int
    unread: int


class NotificationPreferenceIn(Schema):
    kind: str = Field(min_length=1, max_length=60)
    email: str | None = Field(None, description="instant, daily or never; leave out to keep it")
    push: bool | None = Field(None, description="Web Push to my devices for this kind; leave out to keep it")


class NotificationPreferenceOut(Schema):
    kind: str
    email: str
    push: bool


class FollowIn(Schema):
    target_type: str = Field(min_length=3, max_length=100, description="app_label.model, e.g. communities.community")
    target_id: str = Field(min_length=1, max_length=64)


class FollowOut(Schema):
    id: int
    target_type: str
    target_id: str
    created_at: datetime

    @staticmethod
    def resolve_target_type(obj) -> str:
        return f"{obj.content_type.app_label}.{obj.content_type.model}"

    @staticmethod
    def resolve_target_id(obj) -> str:
        return obj.object_id


class FollowPage(Schema):
    items: list[FollowOut]
    next_cursor: str | None


class FeedItemOut(Schema):
    id: int
    name: str
    community: str | None
    payload: dict
    created_at: datetime

    @staticmethod
    def resolve_community(obj) -> str | None:
        return obj.community.slug if obj.community else None


class FeedPage(Schema):
    items: list[FeedItemOut]
    next_cursor: str | None


@router.get("/notifications", response={200: UserNotificationPage, **ERRORS}, summary="My notifications, newest first")
def list_notifications(request, unread: bool = False, cursor: str | None = None, limit: int = 50):
    query = notifications.notifications_of(request.user)
    if unread:
        query = query.filter(read_at__isnull=True)
    return paginate(query, cursor=cursor, limit=limit)


@router.get("/notifications/unread-count", response={200: NotificationsUnreadOut, **ERRORS}, summary="How many are unread")
def unread_count(request):
    return {"unread": notifications.unread_count(request.user)}


@router.post("/notifications/read", response={200: NotificationsReadOut, **ERRORS}, summary="Mark notifications read")
def mark_read(request, payload: NotificationsReadIn):
    require_scope(request, "platform:write")
    changed = notifications.mark_read(user=request.user, ids=payload.ids)
    return {"changed": changed, "unread": notifications.unread_count(request.user)}


@router.get("/notifications/preferences", response={200: list[NotificationPreferenceOut], **ERRORS},
            summary="My e-mail and push choices per notification kind (unlisted kinds: daily, push on)")
def list_preferences(request):
    push = notifications.push_preferences_of(request.user)
    return [{"kind": k, "email": v, "push": push.get(k, notifications.DEFAULT_PUSH)}
            for k, v in sorted(notifications.preferences_of(request.user).items())]


@router.put("/notifications/preferences", response={200: NotificationPreferenceOut, **ERRORS},
            summary="Set the e-mail choice, the push choice or both for one kind")
def put_preference(request, payload: NotificationPreferenceIn):
    require_scope(request, "platform:write")
    return notifications.set_preference(user=request.user, kind=payload.kind, email=payload.email, push=payload.push)


@router.get("/follows", response={200: FollowPage, **ERRORS}, summary="What I follow")
def list_follows(request, cursor: str | None = None, limit: int = 50):
    return paginate(notifications.follows_of(request.user), cursor=cursor, limit=limit)


@router.post("/follows", response={201: FollowOut, **ERRORS}, summary="Follow a member, community or object")
def create_follow(request, payload: FollowIn):
    require_scope(request, "platform:write")
    return Status(201, notifications.follow(user=request.user, target_type=payload.target_type,
                                            target_id=payload.target_id))


@router.delete("/follows/{follow_id}", response={204: None, **ERRORS}, summary="Stop following")
def delete_follow(request, follow_id: int):
    require_scope(request, "platform:write")
    notifications.unfollow(user=request.user, follow_id=follow_id)
    return Status(204, None)


@router.get("/feed", response={200: FeedPage, **ERRORS}, summary="My activity feed")
def my_feed(request, cursor: str | None = None, limit: int = 50):
    return paginate(notifications.person_feed(request.user), cursor=cursor, limit=limit)


@router.get("/communities/{slug}/feed", response={200: FeedPage, **ERRORS}, summary="A community's activity feed")
def community_feed(request, slug: str, cursor: str | None = None, limit: int = 50):
    community = community_for(request.user, slug, "view")
    return paginate(notifications.community_feed(community), cursor=cursor, limit=limit)


# --- Web Push: the VAPID key and this person's browsers' subscriptions ----------------------------

from urllib.parse import urlparse  # noqa: E402

from pumasi.platform import webpush  # noqa: E402


class PushKeyOut(Schema):
    public_key: str = Field(description="VAPID public key (base64url, uncompressed P-256 point): the "
                                        "applicationServerKey for PushManager.subscribe()")


class PushKeysIn(Schema):
    p256dh: str = Field(min_length=1, max_length=200)
    auth: str = Field(min_length=1, max_length=100)


class PushSubscriptionIn(Schema):
    """What the browser's PushSubscription.toJSON() gives."""

    endpoint: str = Field(min_length=1, max_length=2000)
    keys: PushKeysIn
    expirationTime: int | None = Field(None, description="milliseconds since 1970, or null")  # noqa: N815


class PushSubscriptionOut(Schema):
    id: int
    push_service: str
    device: str
    created_at: datetime
    expires_at: datetime | None
    last_success_at: datetime | None
    failures: int
    disabled_at: datetime | None
    disabled_reason: str

    @staticmethod
    def resolve_push_service(obj) -> str:
        return urlparse(obj.endpoint).netloc

    @staticmethod
    def resolve_device(obj) -> str:
        return obj.label


class PushSubscriptionPage(Schema):
    items: list[PushSubscriptionOut]
    next_cursor: str | None


@router.get("/push/key", auth=None, response={200: PushKeyOut}, summary="The VAPID public key to subscribe with")
def push_key(request):
    return {"public_key": webpush.vapid_public_key()}


@router.get("/push/subscriptions", response={200: PushSubscriptionPage, **ERRORS},
            summary="My browsers' Web Push subscriptions")
def list_push_subscriptions(request, cursor: str | None = None, limit: int = 50):
    return paginate(webpush.subscriptions_of(request.user), cursor=cursor, limit=limit)


@router.post("/push/subscriptions", response={201: PushSubscriptionOut, **ERRORS},
             summary="Turn on Web Push for a browser (its PushSubscription.toJSON())")
def create_push_subscription(request, payload: PushSubscriptionIn):
    require_scope(request, "platform:write")
    return Status(201, webpush.subscribe(
        user=request.user, endpoint=payload.endpoint, p256dh=payload.keys.p256dh, auth=payload.keys.auth,
        expiration_time=payload.expirationTime, label=webpush.device_label(request.headers.get("User-Agent", ""))))


@router.delete("/push/subscriptions/{subscription_id}", response={204: None, **ERRORS},
               summary="Turn off Web Push for one browser")
def delete_push_subscription(request, subscription_id: int):
    require_scope(request, "platform:write")
    webpush.unsubscribe(user=request.user, subscription_id=subscription_id)
    return Status(204, None)


# --- A person's calendar feed of their bookings ---------------------------------------------------

from pumasi.platform import calendars  # noqa: E402


class CalendarFeedOut(Schema):
    url: str | None = Field(description="The private iCalendar URL of my bookings; null while I have none.")
    created_at: datetime | None
    rotated_at: datetime | None


def _calendar_feed_out(request, feed) -> dict:
    if feed is None:
        return {"url": None, "created_at": None, "rotated_at": None}
    return {"url": request.build_absolute_uri(calendars.feed_path(feed)), "created_at": feed.created_at,
            "rotated_at": feed.rotated_at}


@router.get("/me/calendar", response={200: CalendarFeedOut, **ERRORS}, summary="The private calendar URL of my bookings")
def my_calendar_feed(request):
    return _calendar_feed_out(request, calendars.feed_of(request.user))


@router.post("/me/calendar/rotate", response={200: CalendarFeedOut, **ERRORS},
             summary="Issue my calendar URL, or replace it (the old URL stops working at once)")
def rotate_calendar_feed(request):
    require_scope(request, "platform:write")
    return _calendar_feed_out(request, calendars.rotate_calendar_feed(actor=request.user))


@router.delete("/me/calendar", response={204: None, **ERRORS}, summary="Turn my calendar URL off")
def turn_off_calendar_feed(request):
    require_scope(request, "platform:write")
    calendars.turn_off_calendar_feed(actor=request.user)
    return Status(204, None)
