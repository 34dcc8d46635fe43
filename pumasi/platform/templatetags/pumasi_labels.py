"""Template filters that show stored codes (roles, audit actions, changes) in the reader's language."""

from __future__ import annotations

from django import template
from django.utils.translation import gettext_lazy as _

register = template.Library()

# Audit actions of the foundation. Other apps add theirs from their AppConfig.ready():
#   from pumasi.platform.templatetags.pumasi_labels import ACTION_LABELS
#   ACTION_LABELS["ledger.posted"] = _("Transaction posted")
ACTION_LABELS = {
    "account.signed_up": _("Signed up"),
    "profile.updated": _("Profile changed"),
    "profile.avatar_changed": _("Avatar changed"),
    "community.created": _("Community created"),
    "community.updated": _("Community changed"),
    "invitation.created": _("Invitation link created"),
    "invitation.revoked": _("Invitation link revoked"),
    "membership.joined": _("Joined"),
    "membership.left": _("Left"),
    "membership.removed": _("Removed from the community"),
    "membership.role_changed": _("Role changed"),
    "token.created": _("API token created"),
    "token.revoked": _("API token revoked"),
}

FIELD_LABELS = {
    "role": _("role"),
    "name": _("name"),
    "slug": _("address"),
    "kind": _("kind"),
    "via": _("joined by"),
    "email": _("e-mail"),
    "display_name": _("display name"),
    "language": _("language"),
    "expires_at": _("expires"),
    "max_uses": _("maximum uses"),
    "scopes": _("scopes"),
    "avatar": _("avatar"),
}

VALUE_LABELS = {
    "observer": _("Observer"),
    "member": _("Member"),
    "committee": _("Committee"),
    "organiser": _("Organiser"),
    "invitation": _("invitation link"),
    "open": _("open join"),
    "residents": _("Residents' association"),
    "cooperative": _("Cooperative"),
    "company": _("Company community"),
    "public": _("Public body / living lab"),
    "ko": _("Korean"),
    "en": _("English"),
}


@register.filter
def role_label(role: str | None) -> str:
    """'committee' -> 'Committee' / '위원'."""
    if not role:
        return ""
    return str(VALUE_LABELS.get(role, role))


@register.filter
def audit_action(action: str) -> str:
    return str(ACTION_LABELS.get(action, action))


def _value(value) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, list):
        return ", ".join(_value(v) for v in value)
    if isinstance(value, str):
        return str(VALUE_LABELS.get(value, value))
    return str(value)


@register.filter
def audit_changes(changes) -> list[tuple[str, str]]:
    """[(field label, 'old → new' or value), ...] for an audit entry's `changes` dict."""
    if not isinstance(changes, dict):
        return []
    rows = []
    for key, value in changes.items():
        label = str(FIELD_LABELS.get(key, key))
        if isinstance(value, list) and len(value) == 2 and key not in {"scopes"}:
            rows.append((label, f"{_value(value[0])} → {_value(value[1])}"))
        else:
            rows.append((label, _value(value)))
    return rows
