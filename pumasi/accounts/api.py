"""API for the signed-in person: who am I, change my profile."""

from __future__ import annotations

from ninja import Router, Schema
from pydantic import Field

from pumasi.accounts import services
from pumasi.communities.selectors import memberships_of
from pumasi.core.api import client_community, require_scope

router = Router(tags=["me"])


class MembershipBrief(Schema):
    community_slug: str
    community_name: str
    role: str


class MeOut(Schema):
    id: int
    email: str
    display_name: str
    language: str
    avatar_url: str | None


class ProfilePatch(Schema):
    display_name: str | None = Field(None, max_length=80)
    language: str | None = None


def _me(user) -> dict:
    return {
        "id": user.pk,
        "email": user.email,
        "display_name": user.display_name,
        "language": user.language,
        "avatar_url": user.avatar.url if user.avatar else None,
    }


@router.get("/me", response=MeOut, summary="The signed-in person")
def me(request):
    # No query beyond authentication: clients poll this, so it stays as cheap as a read can be.
    return _me(request.user)


@router.get("/me/memberships", response=list[MembershipBrief], summary="My communities and my role in each")
def my_memberships(request):
    memberships = memberships_of(request.user)
    if (community := client_community(request)) is not None:
        memberships = memberships.filter(community=community)  # a client application sees only its own
    return [
        {"community_slug": m.community.slug, "community_name": m.community.name, "role": m.role}
        for m in memberships
    ]


@router.patch("/me", response=MeOut, summary="Change my display name or language")
def update_me(request, payload: ProfilePatch):
    require_scope(request, "communities:write")
    services.update_profile(user=request.user, **payload.dict(exclude_none=True))
    return _me(request.user)
