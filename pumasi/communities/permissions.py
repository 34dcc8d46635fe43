"""Who may do what in a community: the one place views, API and CLI ask."""

from __future__ import annotations

from django.utils.translation import gettext as _

from pumasi.communities.models import Community, Membership, Role
from pumasi.core.errors import NotFound, PermissionDenied

RANK = {Role.OBSERVER: 0, Role.MEMBER: 1, Role.COMMITTEE: 2, Role.ORGANISER: 3}

# action -> the least role that may do it
ACTIONS: dict[str, str] = {
    "view": Role.OBSERVER,
    "view_members": Role.OBSERVER,
    "participate": Role.MEMBER,
    "leave": Role.OBSERVER,
    "decide": Role.COMMITTEE,
    "edit": Role.ORGANISER,
    "invite": Role.ORGANISER,
    "change_role": Role.ORGANISER,
    "remove_member": Role.ORGANISER,
    "view_audit": Role.ORGANISER,
}


def role_of(user, community: Community) -> str | None:
    if user is None or not user.is_authenticated:
        return None
    cache = getattr(user, "_pumasi_roles", None)
    if cache is None:
        cache = user._pumasi_roles = {}
    if community.pk not in cache:
        cache[community.pk] = (
            Membership.objects.filter(community=community, user=user).values_list("role", flat=True).first()
        )
    return cache[community.pk]


def forget_roles(user) -> None:
    """Drop the per-request role cache after a membership change."""
    if hasattr(user, "_pumasi_roles"):
        del user._pumasi_roles


def can(user, action: str, community: Community) -> bool:
    least = ACTIONS[action]
    role = role_of(user, community)
    return role is not None and RANK[role] >= RANK[least]


def require(user, action: str, community: Community) -> None:
    """Raise unless allowed. Outsiders get NotFound so a community's existence does not leak
    through its private pages; members lacking the role get PermissionDenied."""
    if can(user, action, community):
        return
    if role_of(user, community) is None:
        raise NotFound(_("No such community."))
    raise PermissionDenied(_("Your role in %(name)s does not allow this.") % {"name": community.name})
