"""pumasi as an OpenID Connect provider: scopes, claims, client applications per community,
scoped grants, and immediate revocation of what a client was given.

django-oauth-toolkit does the protocol (discovery, JWKS, authorization code with PKCE, refresh
tokens, introspection, userinfo); this module says what the scopes mean in pumasi.
"""

from __future__ import annotations

import re
import secrets
from urllib.parse import urlparse

from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from oauth2_provider.models import AccessToken, Application, Grant, RefreshToken
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.scopes import BaseScopes

from pumasi.communities import permissions
from pumasi.communities.models import Community, Membership, Role
from pumasi.core.errors import InvalidInput, NotFound, PermissionDenied
from pumasi.core.events import on_event, publish_event
from pumasi.platform.models import OidcClient, ScopedGrant
from pumasi.platform.services import TOKEN_SCOPES, record_audit

IDENTITY_SCOPES = {
    "openid": _("Sign you in with your pumasi account"),
    "profile": _("Your name and language"),
    "email": _("Your e-mail address"),
    "communities": _("Your role in the community that registered this application"),
    "grants": _("Rights the community granted you (for example, production of a product)"),
}
# The least community role needed for a scope to be granted; anything a person's role does
# not reach is left out of the token even if they press "allow".
SCOPE_MIN_ROLE = {"read": Role.OBSERVER, "audit:read": Role.ORGANISER, "communities:write": Role.ORGANISER}
DEFAULT_CLIENT_SCOPES = ["openid", "profile", "email", "communities", "grants", "read"]
GRANT_SCOPE_RE = re.compile(r"^[a-z][a-z0-9_-]*(:[A-Za-z0-9_.-]+)+$")


def all_scopes() -> dict[str, str]:
    return {**{k: str(v) for k, v in IDENTITY_SCOPES.items()}, **TOKEN_SCOPES}


def min_role_for(scope: str) -> str:
    if scope in IDENTITY_SCOPES:
        return Role.OBSERVER
    return SCOPE_MIN_ROLE.get(scope, Role.MEMBER)


def scopes_within_role(scopes, role: str | None) -> list[str]:
    if role is None:
        return []
    rank = permissions.RANK[role]
    return [s for s in scopes if rank >= permissions.RANK[min_role_for(s)]]


def client_of(application) -> OidcClient | None:
    if application is None:
        return None
    return OidcClient.objects.select_related("community").filter(application=application, disabled_at__isnull=True).first()


class PumasiScopes(BaseScopes):
    """Scopes a client may ask for: those its community allowed when registering it."""

    def get_all_scopes(self):
        return all_scopes()

    def get_available_scopes(self, application=None, request=None, *args, **kwargs):
        client = client_of(application)
        return list(client.allowed_scopes) if client else []

    def get_default_scopes(self, application=None, request=None, *args, **kwargs):
        return ["openid"]


def active_grants(user, community) -> list[str]:
    return sorted(
        ScopedGrant.objects.filter(user=user, community=community, revoked_at__isnull=True).values_list("scope", flat=True)
    )


class PumasiOAuth2Validator(OAuth2Validator):
    oidc_claim_scope = {
        **OAuth2Validator.oidc_claim_scope,
        "pumasi_community": "communities",
        "pumasi_role": "communities",
        "pumasi_grants": "grants",
    }

    def get_additional_claims(self, request):
        user = request.user
        client = client_of(getattr(request, "client", None))
        claims = {
            "name": user.name,
            "locale": user.language or "ko",
            "email": user.email,
            "email_verified": _email_verified(user),
        }
        if client is not None:
            role = Membership.objects.filter(community=client.community, user=user).values_list("role", flat=True).first()
            claims["pumasi_community"] = client.community.slug
            claims["pumasi_role"] = role
            claims["pumasi_grants"] = active_grants(user, client.community) if role else []
        return claims

    def validate_bearer_token(self, token, scopes, request):
        """A token is good only while its client is enabled and its person still belongs to the
        client's community; checked on every use, so leaving or being removed ends access at once."""
        if not super().validate_bearer_token(token, scopes, request):
            return False
        client = client_of(request.client)
        if client is None or not Membership.objects.filter(community=client.community, user=request.user).exists():
            request.oauth2_error = {"error": "invalid_token", "error_description": "The access token was revoked."}
            return False
        return True


def _email_verified(user) -> bool:
    from allauth.account.models import EmailAddress

    return EmailAddress.objects.filter(user=user, email__iexact=user.email, verified=True).exists()


class OAuthApiToken:
    """Makes an OAuth access token look like a personal access token to the API shell, confined to
    the community that registered the client (`community`; personal tokens have none)."""

    def __init__(self, access_token: AccessToken, community: Community):
        self.access_token = access_token
        self.pk = f"oauth{access_token.pk}"
        self.user = access_token.user
        self.scopes = access_token.scope.split()
        self.community = community


def api_token_for_access_token(secret: str) -> OAuthApiToken | None:
    """The valid OAuth access token with this secret, for API calls made by a client application."""
    import hashlib

    token = (
        AccessToken.objects.select_related("user", "application")
        .filter(token_checksum=hashlib.sha256(secret.encode()).hexdigest())
        .first()
    )
    if token is None or token.user is None or not token.user.is_active or not token.is_valid():
        return None
    client = client_of(token.application)
    if client is None or not Membership.objects.filter(community=client.community, user=token.user).exists():
        return None
    return OAuthApiToken(token, client.community)


# --- What a client application may reach -------------------------------------------------------

# Operations without a community in their path that a client may still call: who the person is and
# their standing in the client's own community (those endpoints filter to it through
# pumasi.core.api.client_community). Every other operation without a community in its path spans
# all of a person's communities (notifications, feeds, follows, bookings, tokens, accepting another
# community's invitation, creating a community), so a client is refused there. Deny by default: a new
# endpoint stays closed to client applications until someone adds it here.
CLIENT_OPERATIONS_WITHOUT_COMMUNITY = {
    ("GET", "me"), ("GET", "me/memberships"), ("GET", "me/grants"), ("GET", "communities"),
}
# Routes whose {slug} names a sharing zone (zone slugs are unique across communities), not a community.
ZONE_SLUG_ROUTES = ("sharing/zones/<slug>", "sharing/ngsi-ld/zones/<slug>", "sharing/ingest/")
_API_ROOT = re.compile(r"^api/v\d+/")


def confine_to_client_community(request, token: OAuthApiToken) -> None:
    """Refuse an API call by a client application outside the community that registered it.

    Called by the API's token authentication, before any view runs, so no endpoint can forget it.
    Another community's operations answer 404 "No such community." (or "No such zone."), exactly
    what an unknown address gets: a client of A must not learn, let alone act on, what else its
    person belongs to, and 403 would confirm that B exists and that the person is in it. Operations
    without a community in the path get 403: they name no community, so refusing leaks nothing and
    tells the client's developer plainly that this part of the API is not for client applications.
    """
    match = getattr(request, "resolver_match", None)
    route = _API_ROOT.sub("", match.route if match is not None else "")
    slug = match.kwargs.get("slug") if match is not None else None
    if slug is None:
        method = "GET" if request.method == "HEAD" else request.method
        if (method, route) not in CLIENT_OPERATIONS_WITHOUT_COMMUNITY:
            raise PermissionDenied(_("Applications signed in through pumasi may only use their own community's part "
                                     "of the API."), code="outside_client_community")
        return
    if any(route.startswith(prefix) for prefix in ZONE_SLUG_ROUTES):
        from pumasi.sharing.models import Zone

        if not Zone.objects.filter(slug=slug, community=token.community).exists():
            raise NotFound(_("No such zone."))
    elif slug != token.community.slug:
        raise NotFound(_("No such community."))


# --- Client applications -----------------------------------------------------------------------


def _validate_redirect_uris(uris: list[str]) -> list[str]:
    errors = []
    for uri in uris:
        parsed = urlparse(uri)
        if parsed.scheme not in {"https", "http"} or not parsed.netloc or parsed.fragment:
            errors.append(f"{uri!r}: use an absolute http(s) address without a #fragment.")
        elif parsed.scheme == "http" and parsed.hostname not in {"localhost", "127.0.0.1", "::1"}:
            errors.append(f"{uri!r}: plain http is only allowed for localhost; use https.")
    return errors


def register_client(
    *, actor, community: Community, name: str, redirect_uris: list[str], scopes: list[str] | None = None,
    confidential: bool = True,
) -> tuple[OidcClient, str | None]:
    """Register a client application for a community. Returns it with its client secret (shown once;
    None for public clients, which must use PKCE alone)."""
    permissions.require(actor, "edit", community)
    scopes = list(dict.fromkeys(scopes or DEFAULT_CLIENT_SCOPES))
    errors: dict[str, list[str]] = {}
    name = (name or "").strip()
    if not name or len(name) > 100:
        errors["name"] = ["Give the application a name of 1 to 100 characters."]
    redirect_uris = [u.strip() for u in redirect_uris if u and u.strip()]
    if not redirect_uris:
        errors["redirect_uris"] = ["Give at least one redirect URI."]
    else:
        uri_errors = _validate_redirect_uris(redirect_uris)
        if uri_errors:
            errors["redirect_uris"] = uri_errors
    unknown = sorted(set(scopes) - set(all_scopes()))
    if unknown:
        errors["scopes"] = [f"Unknown scope(s): {', '.join(unknown)}."]
    elif "openid" not in scopes:
        errors["scopes"] = ["The 'openid' scope is required."]
    if errors:
        raise InvalidInput("The application was not registered.", field_errors=errors)
    secret = secrets.token_urlsafe(40) if confidential else None
    client_id = secrets.token_urlsafe(24)
    # Hash before the transaction: password hashing is slow on purpose and must not hold the write lock.
    hashed = make_password(secret) if secret else ""
    with transaction.atomic():
        application = Application.objects.create(
            name=f"{community.slug}: {name}"[:255], client_id=client_id,
            client_type=Application.CLIENT_CONFIDENTIAL if confidential else Application.CLIENT_PUBLIC,
            authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE, redirect_uris=" ".join(redirect_uris),
            client_secret=hashed, algorithm=Application.RS256_ALGORITHM, skip_authorization=False,
        )
        client = OidcClient.objects.create(
            community=community, application=application, name=name, client_id=client_id, allowed_scopes=scopes,
            created_by=actor,
        )
        record_audit(actor=actor, action="oidc_client.registered", obj=client, community=community,
                     changes={"name": name, "redirect_uris": redirect_uris, "scopes": scopes})
        publish_event(name="platform.oidc_client_registered", community=community,
                      payload={"client_id": client_id, "name": name})
    return client, secret


def client_for(actor, community: Community, client_pk: int) -> OidcClient:
    permissions.require(actor, "edit", community)
    client = OidcClient.objects.filter(community=community, pk=client_pk).select_related("application").first()
    if client is None:
        raise NotFound("No such application.")
    return client


def disable_client(*, actor, community: Community, client_pk: int) -> OidcClient:
    """Disable a client: its OAuth application and every token it holds are deleted at once."""
    with transaction.atomic():
        client = client_for(actor, community, client_pk)
        if client.disabled_at is None:
            application = client.application
            client.disabled_at = timezone.now()
            client.application = None
            client.save(update_fields=["disabled_at", "application"])
            if application is not None:
                application.delete()  # cascades to its grants, access and refresh tokens
            record_audit(actor=actor, action="oidc_client.disabled", obj=client, community=community)
            publish_event(name="platform.oidc_client_disabled", community=community, payload={"client_id": client.client_id})
    return client


def revoke_tokens(*, user, community: Community) -> int:
    """End every token this person holds for this community's applications. Access tokens are
    deleted, so introspection answers inactive and userinfo refuses from the next request on."""
    applications = OidcClient.objects.filter(community=community, application__isnull=False).values("application_id")
    access = AccessToken.objects.filter(user=user, application_id__in=applications)
    count = access.count()
    RefreshToken.objects.filter(user=user, application_id__in=applications).delete()
    access.delete()
    Grant.objects.filter(user=user, application_id__in=applications).delete()
    return count


# --- Scoped grants -------------------------------------------------------------------------------


def grant_scope(*, actor, community: Community, user, scope: str, note: str = "") -> ScopedGrant:
    permissions.require(actor, "edit", community)
    scope = (scope or "").strip()
    errors: dict[str, list[str]] = {}
    if not GRANT_SCOPE_RE.match(scope) or len(scope) > 120:
        errors["scope"] = ["Write the right as area:thing[:id], e.g. production:product:12 (letters, digits, _.-)."]
    if permissions.role_of(user, community) is None:
        errors["user"] = ["This person is not a member of the community."]
    if len(note) > 200:
        errors["note"] = ["At most 200 characters."]
    if not errors and ScopedGrant.objects.filter(user=user, community=community, scope=scope, revoked_at__isnull=True).exists():
        errors["scope"] = ["This person already holds this right."]
    if errors:
        raise InvalidInput("The right was not granted.", field_errors=errors)
    with transaction.atomic():
        grant = ScopedGrant.objects.create(user=user, community=community, scope=scope, note=note, granted_by=actor)
        record_audit(actor=actor, action="scoped_grant.granted", obj=grant, community=community,
                     changes={"user": user.pk, "scope": scope})
        publish_event(name="platform.grant_given", community=community, recipient=user,
                      payload={"scope": scope, "grant_id": grant.pk})
    return grant


def revoke_grant(*, actor, community: Community, grant_id: int) -> ScopedGrant:
    """Withdraw a right. The person's tokens for this community's applications end at once, so a
    client cannot keep acting on a right that is gone; they sign in again to get a fresh token."""
    permissions.require(actor, "edit", community)
    with transaction.atomic():
        grant = ScopedGrant.objects.select_for_update().filter(community=community, pk=grant_id).select_related("user").first()
        if grant is None:
            raise NotFound("No such grant.")
        if grant.revoked_at is None:
            grant.revoked_at = timezone.now()
            grant.revoked_by = actor
            grant.save(update_fields=["revoked_at", "revoked_by"])
            ended = revoke_tokens(user=grant.user, community=community)
            record_audit(actor=actor, action="scoped_grant.revoked", obj=grant, community=community,
                         changes={"scope": grant.scope, "tokens_ended": ended})
            publish_event(name="platform.grant_revoked", community=community, recipient=grant.user,
                          payload={"scope": grant.scope, "grant_id": grant.pk})
    return grant


def grants_of_community(community: Community):
    return ScopedGrant.objects.filter(community=community).select_related("user").order_by("-id")


def clients_of_community(community: Community):
    return OidcClient.objects.filter(community=community).order_by("-id")


@on_event("communities.member_left")
def _end_tokens_of_leaver(event) -> None:
    """Someone who left or was removed keeps no token for the community's applications."""
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(pk=(event.payload or {}).get("user_id")).first()
    if user is not None and event.community is not None:
        revoke_tokens(user=user, community=event.community)
