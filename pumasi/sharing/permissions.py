"""Who may do what with zones, resources, bookings and sensors, built on community roles."""

from __future__ import annotations

from pumasi.communities.models import Role
from pumasi.communities.permissions import RANK, role_of
from pumasi.core.errors import NotFound, PermissionDenied

# action -> the least community role that may do it
ACTIONS = {
    "view": Role.OBSERVER,
    "book": Role.MEMBER,
    "decide": Role.COMMITTEE,  # sharing rules, holder assignments, violations
    "manage": Role.ORGANISER,  # zones, spaces, devices
}


def can(user, action: str, zone) -> bool:
    role = role_of(user, zone.community)
    return role is not None and RANK[role] >= RANK[ACTIONS[action]]


def require(user, action: str, zone) -> None:
    if can(user, action, zone):
        return
    if role_of(user, zone.community) is None:
        raise NotFound("No such zone.")
    raise PermissionDenied(f"Your role in {zone.community.name} does not allow this.")


def may_view_board(user, zone) -> bool:
    return zone.public_board or can(user, "view", zone)


def may_handle_booking(user, booking) -> bool:
    """The booker, or the zone's committee."""
    if user is not None and user.is_authenticated and booking.user_id == user.pk:
        return True
    return can(user, "decide", booking.resource.zone)
