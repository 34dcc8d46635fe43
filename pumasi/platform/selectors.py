"""Reads of the platform: tokens, audit entries, events a person may see."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.utils import timezone

from pumasi.platform.models import ApiToken, AuditEntry, Event
from pumasi.platform.services import token_digest


def active_token_for_secret(secret: str) -> ApiToken | None:
    token = (
        ApiToken.objects.select_related("user")
        .filter(digest=token_digest(secret), revoked_at__isnull=True)
        .first()
    )
    if token is None or not token.user.is_active:
        return None
    if token.expires_at is not None and token.expires_at <= timezone.now():
        return None
    return token


def tokens_of(user) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user).order_by("-id")


def audit_entries(community) -> QuerySet[AuditEntry]:
    return AuditEntry.objects.filter(community=community).select_related("actor").order_by("-id")


def events_after(*, after_id: int, community_ids: set[int], user_id: int | None, limit: int = 200) -> list[Event]:
    """Events newer than after_id that this person may see: their communities' public events
    and events addressed to them."""
    visible = Q(recipient__isnull=True, community_id__in=community_ids)
    if user_id is not None:
        visible |= Q(recipient_id=user_id)
    return list(Event.objects.filter(visible, pk__gt=after_id).order_by("pk")[:limit])


def last_event_id() -> int:
    return Event.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
