"""Write path of the platform: audit records and personal access tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from pumasi.core.errors import InvalidInput, NotFound
from pumasi.platform.models import ApiToken, AuditEntry

# What a token may be allowed to do. "read" covers every GET; the others gate writes.
TOKEN_SCOPES = {
    "read": gettext_noop("Read everything the owner may read"),
    "communities:write": gettext_noop("Create and change communities, members and invitations"),
    "audit:read": gettext_noop("Read audit logs the owner may read"),
    "ledger:write": gettext_noop("Post ledger transactions"),
    "sharing:write": gettext_noop("Book and manage shared resources"),
    "cocreation:write": gettext_noop("Ideas, surveys, workspaces, designs"),
    "market:write": gettext_noop("Listings, orders, stock"),
    "governance:write": gettext_noop("Proposals and votes"),
    "platform:write": gettext_noop("Notifications, follows, webhooks, client applications and grants"),
}


def _audit_entry(*, actor, action: str, obj, community=None, changes: dict | None = None) -> AuditEntry:
    return AuditEntry(
        community=community,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        action=action,
        object_type=obj._meta.label_lower if hasattr(obj, "_meta") else type(obj).__name__.lower(),
        object_id=str(getattr(obj, "pk", obj)),
        changes=changes or {},
    )


def record_audit(*, actor, action: str, obj, community=None, changes: dict | None = None) -> AuditEntry:
    """Record one state change. Call inside the service's transaction so both commit or neither."""
    entry = _audit_entry(actor=actor, action=action, obj=obj, community=community, changes=changes)
    entry.save(force_insert=True)
    return entry


def record_audits(entries: list[dict]) -> list[AuditEntry]:
    """Several state changes (each the keyword arguments of `record_audit`) with one INSERT."""
    return AuditEntry.objects.bulk_create([_audit_entry(**entry) for entry in entries]) if entries else []


def token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_token(
    *, user, name: str, scopes: list[str], expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """Create a token and return it with its secret, which is never stored and never shown again."""
    errors: dict[str, list[str]] = {}
    name = (name or "").strip()
    if not name or len(name) > 100:
        errors["name"] = [_("Give the token a name of 1 to 100 characters.")]
    unknown = sorted(set(scopes) - set(TOKEN_SCOPES))
    if unknown:
        errors["scopes"] = [_("Unknown scope(s): %(unknown)s. Known: %(known)s.") % {
            "unknown": ", ".join(unknown), "known": ", ".join(sorted(TOKEN_SCOPES))}]
    if not scopes:
        errors.setdefault("scopes", []).append(_("Choose at least one scope."))
    if expires_at is not None and expires_at <= timezone.now():
        errors["expires_at"] = [_("The expiry must be in the future.")]
    if errors:
        raise InvalidInput(_("The token could not be created."), field_errors=errors)
    prefix = secrets.token_hex(4)
    secret = f"pms_{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user, name=name, prefix=prefix, digest=token_digest(secret), scopes=sorted(set(scopes)),
            expires_at=expires_at,
        )
        record_audit(actor=user, action="token.created", obj=token, changes={"name": name, "scopes": token.scopes})
    return token, secret


def revoke_api_token(*, user, token_id: int) -> ApiToken:
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().filter(pk=token_id, user=user).first()
        if token is None:
            raise NotFound(_("No such token."))
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
            record_audit(actor=user, action="token.revoked", obj=token)
    return token


def touch_api_token(*, token: ApiToken) -> None:
    """Note when a token was last used, at most once a minute so reads stay write-free."""
    if not isinstance(token, ApiToken):  # an OAuth client's access token has no such column
        return
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now


def set_community_policy(*, actor, community, organisers_need_mfa: bool):
    """Change a community's security policy (organisers only)."""
    from pumasi.communities import permissions
    from pumasi.platform.models import CommunityPolicy

    permissions.require(actor, "edit", community)
    with transaction.atomic():
        policy, _created = CommunityPolicy.objects.select_for_update().get_or_create(community=community)
        if policy.organisers_need_mfa != organisers_need_mfa:
            policy.organisers_need_mfa = organisers_need_mfa
            policy.save(update_fields=["organisers_need_mfa", "updated_at"])
            record_audit(actor=actor, action="community.policy_changed", obj=policy, community=community,
                         changes={"organisers_need_mfa": organisers_need_mfa})
    return policy
