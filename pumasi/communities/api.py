"""API for communities, memberships and invitations: parse, authorize, call a service, serialize."""

from __future__ import annotations

from datetime import datetime

from django.urls import reverse
from ninja import Router, Schema, Status
from pydantic import Field

from pumasi.communities import selectors, services
from pumasi.core.api import client_community, require_scope
from pumasi.core.errors import NotFound
from pumasi.core.pagination import paginate

router = Router(tags=["communities"])


class CommunityOut(Schema):
    id: int
    name: str
    slug: str
    kind: str
    description: str
    time_zone: str
    currency: str
    open_join: bool
    created_at: datetime


class CommunityIn(Schema):
    name: str = Field(min_length=1, max_length=120)
    slug: str = Field(min_length=3, max_length=60)
    kind: str
    description: str = Field("", max_length=5000)
    time_zone: str = "Asia/Seoul"
    currency: str = "KRW"
    open_join: bool = False


class CommunityPatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=120)
    kind: str | None = None
    description: str | None = Field(None, max_length=5000)
    time_zone: str | None = None
    currency: str | None = None
    open_join: bool | None = None


class CommunityPage(Schema):
    items: list[CommunityOut]
    next_cursor: str | None


class MemberOut(Schema):
    id: int
    user_id: int
    display_name: str
    role: str
    joined_at: datetime

    @staticmethod
    def resolve_display_name(obj) -> str:
        return obj.user.name


class MemberPage(Schema):
    items: list[MemberOut]
    next_cursor: str | None


class RoleIn(Schema):
    role: str


class InvitationIn(Schema):
    role: str = "member"
    days_valid: int = Field(7, ge=1, le=90)
    max_uses: int | None = Field(None, ge=1, le=10000)


class InvitationOut(Schema):
    id: int
    role: str
    url: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    max_uses: int | None
    uses: int

    @staticmethod
    def resolve_url(obj) -> str:
        return reverse("communities:join", args=[obj.token])


class InvitationPage(Schema):
    items: list[InvitationOut]
    next_cursor: str | None


class JoinIn(Schema):
    token: str = Field(min_length=8, max_length=64)


@router.get("/communities", response=CommunityPage, summary="Communities I belong to")
def list_my_communities(request, cursor: str | None = None, limit: int = 50):
    communities = selectors.communities_of(request.user)
    if (community := client_community(request)) is not None:
        communities = communities.filter(pk=community.pk)  # a client application sees only its own
    return paginate(communities, cursor=cursor, limit=limit)


@router.post("/communities", response={201: CommunityOut}, summary="Create a community")
def create_community(request, payload: CommunityIn):
    require_scope(request, "communities:write")
    return Status(201, services.create_community(actor=request.user, **payload.dict()))


@router.get("/communities/{slug}", response=CommunityOut)
def get_community(request, slug: str):
    return selectors.community_for(request.user, slug)


@router.patch("/communities/{slug}", response=CommunityOut)
def update_community(request, slug: str, payload: CommunityPatch):
    require_scope(request, "communities:write")
    community = selectors.community_for(request.user, slug)
    return services.update_community(actor=request.user, community=community, **payload.dict(exclude_none=True))


@router.get("/communities/{slug}/members", response=MemberPage)
def list_members(request, slug: str, cursor: str | None = None, limit: int = 50):
    community = selectors.community_for(request.user, slug, "view_members")
    return paginate(selectors.members(community), cursor=cursor, limit=limit, newest_first=False)


@router.patch("/communities/{slug}/members/{membership_id}", response=MemberOut)
def change_member_role(request, slug: str, membership_id: int, payload: RoleIn):
    require_scope(request, "communities:write")
    community = selectors.community_for(request.user, slug)
    membership = selectors.membership(community, membership_id)
    return services.change_role(actor=request.user, membership=membership, role=payload.role)


@router.delete("/communities/{slug}/members/{membership_id}", response={204: None})
def remove_member(request, slug: str, membership_id: int):
    require_scope(request, "communities:write")
    community = selectors.community_for(request.user, slug)
    services.remove_member(actor=request.user, membership=selectors.membership(community, membership_id))
    return Status(204, None)


@router.post("/communities/{slug}/leave", response={204: None}, summary="Leave a community")
def leave(request, slug: str):
    require_scope(request, "communities:write")
    services.leave_community(actor=request.user, community=selectors.community_for(request.user, slug))
    return Status(204, None)


@router.post("/communities/{slug}/join", response={201: MemberOut}, summary="Join an open community")
def join_open(request, slug: str):
    require_scope(request, "communities:write")
    community = selectors.open_community(slug)
    if community is None:
        raise NotFound("No such community.")
    return Status(201, services.join_open_community(actor=request.user, community=community))


@router.get("/communities/{slug}/invitations", response=InvitationPage)
def list_invitations(request, slug: str, cursor: str | None = None, limit: int = 50):
    community = selectors.community_for(request.user, slug, "invite")
    return paginate(selectors.invitations(community), cursor=cursor, limit=limit)


@router.post("/communities/{slug}/invitations", response={201: InvitationOut})
def create_invitation(request, slug: str, payload: InvitationIn):
    require_scope(request, "communities:write")
    community = selectors.community_for(request.user, slug)
    return Status(201, services.create_invitation(actor=request.user, community=community, **payload.dict()))


@router.delete("/communities/{slug}/invitations/{invitation_id}", response=InvitationOut, summary="Revoke an invitation")
def revoke_invitation(request, slug: str, invitation_id: int):
    require_scope(request, "communities:write")
    community = selectors.community_for(request.user, slug)
    return services.revoke_invitation(actor=request.user, invitation=selectors.invitation(community, invitation_id))


@router.post("/invitations/accept", response={201: MemberOut}, summary="Join by an invitation token")
def accept_invitation(request, payload: JoinIn):
    require_scope(request, "communities:write")
    return Status(201, services.join_by_invitation(actor=request.user, token=payload.token))
