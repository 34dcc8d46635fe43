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
    return services.revoke_api_token(user=request.user, token_id=token_id)


@router.get("/communities/{slug}/audit", response=AuditPage, summary="A community's audit log (organisers)")
def community_audit(request, slug: str, cursor: str | None = None, limit: int = 50):
    require_scope(request, "audit:read")
    community = community_for(request.user, slug, "view_audit")
    return paginate(selectors.audit_entries(community), cursor=cursor, limit=limit)
