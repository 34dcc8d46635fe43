"""Reads for communities: mine, one by address, members, invitations."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from pumasi.communities import permissions
from pumasi.communities.models import Community, Invitation, Membership
from pumasi.core.errors import NotFound


def communities_of(user) -> QuerySet[Community]:
    if not user.is_authenticated:
        return Community.objects.none()
    return Community.objects.filter(memberships__user=user).order_by("name")


def memberships_of(user) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("community").order_by("community__name")


def community_for(user, slug: str, action: str = "view") -> Community:
    """The community at `slug` if `user` may do `action` there; NotFound for outsiders."""
    community = Community.objects.filter(slug=slug).first()
    if community is None:
        raise NotFound(_("No such community."))
    permissions.require(user, action, community)
    return community


def open_community(slug: str) -> Community | None:
    return Community.objects.filter(slug=slug, open_join=True).first()


def members(community: Community) -> QuerySet[Membership]:
    return Membership.objects.filter(community=community).select_related("user").order_by("user__display_name", "user__email")


def membership(community: Community, membership_id: int) -> Membership:
    found = Membership.objects.filter(community=community, pk=membership_id).select_related("user", "community").first()
    if found is None:
        raise NotFound(_("No such member."))
    return found


def invitations(community: Community) -> QuerySet[Invitation]:
    return Invitation.objects.filter(community=community).order_by("-id")


def invitation(community: Community, invitation_id: int) -> Invitation:
    found = Invitation.objects.filter(community=community, pk=invitation_id).select_related("community").first()
    if found is None:
        raise NotFound(_("No such invitation."))
    return found


def invitation_by_token(token: str) -> Invitation | None:
    return Invitation.objects.filter(token=token).select_related("community").first()


def community_ids_of(user_id: int) -> set[int]:
    return set(Membership.objects.filter(user_id=user_id).values_list("community_id", flat=True))
