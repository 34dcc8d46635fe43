"""API for the signed-in person: who am I, change my profile."""

from __future__ import annotations

from ninja import Router, Schema
from pydantic import Field

from pumasi.accounts import services
from pumasi.communities.selectors import memberships_of
from pumasi.core.api import require_scope

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
    memberships: list[MembershipBrief]


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
        "memberships": [
            {"community_slug": m.community.slug, "community_name": m.community.name, "role": m.role}
            for m in memberships_of(user)
        ],
    }


@router.get("/me", response=MeOut, summary="The signed-in person and their communities")
def me(request):
    return _me(request.user)


@router.patch("/me", response=MeOut, summary="Change my display name or language")
def update_me(request, payload: ProfilePatch):
    require_scope(request, "communities:write")
    services.update_profile(user=request.user, **payload.dict(exclude_none=True))
    return _me(request.user)
