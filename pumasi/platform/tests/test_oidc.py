"""pumasi as an OpenID Connect provider, driven end to end by Authlib (an independent client
library) acting as a company shop against a live `pumasi run`; plus the refusals the RFCs ask for."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from html import unescape
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, jwt
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.test import Client
from oauth2_provider.models import AccessToken, Application

from pumasi.core.errors import InvalidInput, PermissionDenied
from pumasi.platform import oidc
from pumasi.platform.models import AuditEntry, OidcClient, ScopedGrant
from pumasi.tests.factories import PASSWORD, UserFactory

REDIRECT = "http://127.0.0.1:9/shop/callback"
SCOPE = "openid profile email communities grants read"


def browser_login(base: str, email: str) -> requests.Session:
    browser = requests.Session()
    page = browser.get(f"{base}/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    answer = browser.post(f"{base}/accounts/login/", data={"csrfmiddlewaretoken": token, "login": email,
                                                           "password": PASSWORD},
                          headers={"Referer": f"{base}/accounts/login/"}, allow_redirects=False)
    assert answer.status_code == 302, answer.text[:500]
    return browser


def consent(browser: requests.Session, authorize_url: str, *, allow: bool = True) -> requests.Response:
    page = browser.get(authorize_url, allow_redirects=False)
    assert page.status_code == 200, page.text[:800]
    fields = {unescape(m.group(1)): unescape(m.group(2))
              for m in re.finditer(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text)}
    if allow:
        fields["allow"] = "Authorize"
    return browser.post(authorize_url, data=fields, headers={"Referer": authorize_url}, allow_redirects=False)


@pytest.fixture
def shop(community, member_of):
    member = member_of(community, "member")
    client, secret = oidc.register_client(actor=community.organiser, community=community, name="Maker shop",
                                          redirect_uris=[REDIRECT])
    grant = oidc.grant_scope(actor=community.organiser, community=community, user=member, scope="production:product:12")
    return {"client": client, "secret": secret, "member": member, "grant": grant, "community": community}


def test_company_shop_signs_a_member_in_and_loses_access_when_the_grant_is_withdrawn(pumasi_server, shop):
    # the live server uses the production hashers, not the test suite's fast MD5
    shop["member"].password = PBKDF2PasswordHasher().encode(PASSWORD, "oidcsalt1234", iterations=1000)
    shop["member"].save(update_fields=["password"])
    Application.objects.filter(pk=shop["client"].application_id).update(
        client_secret=PBKDF2PasswordHasher().encode(shop["secret"], "oidcsalt5678", iterations=1000))
    server = pumasi_server()
    base = server.url
    discovery = requests.get(f"{base}/.well-known/openid-configuration", timeout=10).json()
    assert discovery == requests.get(f"{base}/o/.well-known/openid-configuration", timeout=10).json()
    assert discovery["issuer"] == f"{base}/o"
    assert "RS256" in discovery["id_token_signing_alg_values_supported"]
    assert "S256" in discovery.get("code_challenge_methods_supported", ["S256"])
    jwks = requests.get(discovery["jwks_uri"], timeout=10).json()
    assert jwks["keys"][0]["kty"] == "RSA" and jwks["keys"][0]["alg"] == "RS256"

    client = OAuth2Session(shop["client"].client_id, shop["secret"], scope=SCOPE, redirect_uri=REDIRECT,
                           code_challenge_method="S256")
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(12)
    url, state = client.create_authorization_url(discovery["authorization_endpoint"], code_verifier=verifier,
                                                 nonce=nonce)
    browser = browser_login(base, shop["member"].email)
    answer = consent(browser, url)
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith(REDIRECT) and parse_qs(urlparse(location).query)["state"] == [state]

    token = client.fetch_token(discovery["token_endpoint"], authorization_response=location, code_verifier=verifier)
    assert token["refresh_token"] and set(token["scope"].split()) == set(SCOPE.split())

    claims = jwt.decode(token["id_token"], JsonWebKey.import_key_set(jwks), claims_options={
        "iss": {"essential": True, "value": discovery["issuer"]},
        "aud": {"essential": True, "value": shop["client"].client_id},
        "nonce": {"essential": True, "value": nonce},
    })
    claims.validate()
    assert claims["sub"] == str(shop["member"].pk)
    assert claims["pumasi_role"] == "member" and claims["pumasi_community"] == shop["community"].slug
    assert claims["pumasi_grants"] == ["production:product:12"]

    info = client.get(discovery["userinfo_endpoint"]).json()
    assert info["email"] == shop["member"].email and info["pumasi_grants"] == ["production:product:12"]
    grants = client.get(f"{base}/api/v1/me/grants").json()
    assert [g["scope"] for g in grants["items"]] == ["production:product:12"]
    # the token's scopes bound what it can do: no write scope was asked for
    refused = client.post(f"{base}/api/v1/notifications/preferences", json={"kind": "x", "email": "never"})
    assert refused.status_code in (403, 405) or refused.headers["content-type"].startswith("application/problem+json")

    refreshed = client.refresh_token(discovery["token_endpoint"])
    assert refreshed["access_token"] != token["access_token"]
    assert client.get(discovery["userinfo_endpoint"]).status_code == 200

    introspect = requests.post(f"{base}/o/introspect/", data={"token": refreshed["access_token"]},
                               auth=(shop["client"].client_id, shop["secret"]), timeout=10).json()
    assert introspect["active"] is True

    oidc.revoke_grant(actor=shop["community"].organiser, community=shop["community"], grant_id=shop["grant"].pk)

    introspect = requests.post(f"{base}/o/introspect/", data={"token": refreshed["access_token"]},
                               auth=(shop["client"].client_id, shop["secret"]), timeout=10).json()
    assert introspect == {"active": False}
    assert client.get(discovery["userinfo_endpoint"]).status_code == 401
    assert client.get(f"{base}/api/v1/me/grants").status_code == 401
    refresh_again = requests.post(discovery["token_endpoint"], data={
        "grant_type": "refresh_token", "refresh_token": refreshed["refresh_token"]},
        auth=(shop["client"].client_id, shop["secret"]), timeout=10)
    assert refresh_again.status_code == 400 and refresh_again.json()["error"] == "invalid_grant"


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def _authorize(client: Client, shop, **overrides):
    verifier, challenge = _pkce()
    params = {"response_type": "code", "client_id": shop["client"].client_id, "redirect_uri": REDIRECT,
              "scope": SCOPE, "state": "s1", "code_challenge": challenge, "code_challenge_method": "S256",
              **overrides}
    return verifier, client.get("/o/authorize/", params)


def _allow(client: Client, page) -> str:
    fields = {name: unescape(value) for name, value in
              re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.content.decode())}
    answer = client.post("/o/authorize/", {**fields, "allow": "Authorize"})
    assert answer.status_code == 302, answer.content[:400]
    return parse_qs(urlparse(answer["Location"]).query)["code"][0]


def _token(code: str, verifier: str, shop):
    return Client().post("/o/token/", {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                                       "code_verifier": verifier, "client_id": shop["client"].client_id,
                                       "client_secret": shop["secret"]})


def test_refusals_unknown_client_wrong_redirect_missing_pkce_reused_code_and_pkce_mismatch(shop):
    browser = Client()
    browser.force_login(shop["member"])
    _v, unknown = _authorize(browser, shop, client_id="nope")
    assert unknown.status_code == 400 and "Location" not in unknown
    _v, wrong_redirect = _authorize(browser, shop, redirect_uri="https://evil.example/cb")
    assert wrong_redirect.status_code == 400 and "evil.example" not in wrong_redirect.get("Location", "")
    _v, no_pkce = _authorize(browser, shop, code_challenge="", code_challenge_method="")
    assert no_pkce.status_code == 302 and "error=invalid_request" in no_pkce["Location"]

    verifier, page = _authorize(browser, shop)
    assert page.status_code == 200
    page_text = page.content.decode()
    assert "Maker shop" in page_text
    code = _allow(browser, page)
    mismatch = _token(code, secrets.token_urlsafe(48), shop)
    assert mismatch.status_code == 400 and mismatch.json()["error"] == "invalid_grant"

    verifier, page = _authorize(browser, shop)
    code = _allow(browser, page)
    first = _token(code, verifier, shop)
    assert first.status_code == 200
    reused = _token(code, verifier, shop)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"

    bad_secret = Client().post("/o/token/", {"grant_type": "authorization_code", "code": "x", "redirect_uri": REDIRECT,
                                             "code_verifier": verifier, "client_id": shop["client"].client_id,
                                             "client_secret": "wrong"})
    assert bad_secret.status_code == 401 and bad_secret.json()["error"] == "invalid_client"


def test_outsider_is_refused_and_scopes_beyond_the_role_are_withheld(shop, make_user, member_of):
    outsider = make_user()
    browser = Client()
    browser.force_login(outsider)
    _v, page = _authorize(browser, shop)
    assert page.status_code == 302 and "error=access_denied" in page["Location"] and "state=s1" in page["Location"]

    observer = member_of(shop["community"], "observer")
    OidcClient.objects.filter(pk=shop["client"].pk).update(allowed_scopes=[*oidc.DEFAULT_CLIENT_SCOPES, "market:write"])
    browser = Client()
    browser.force_login(observer)
    verifier, page = _authorize(browser, shop, scope=SCOPE + " market:write")
    assert "market:write" in page.content.decode()  # listed under "not given"
    code = _allow(browser, page)
    token = _token(code, verifier, shop).json()
    assert "market:write" not in token["scope"].split() and "read" in token["scope"].split()


def test_a_client_may_only_ask_for_the_scopes_its_community_allowed(shop):
    OidcClient.objects.filter(pk=shop["client"].pk).update(allowed_scopes=["openid"])
    browser = Client()
    browser.force_login(shop["member"])
    _v, page = _authorize(browser, shop)
    assert page.status_code == 302 and "error=invalid_scope" in page["Location"]


def test_leaving_the_community_ends_tokens_and_disabling_the_client_deletes_them(shop, django_capture_on_commit_callbacks):
    browser = Client()
    browser.force_login(shop["member"])
    verifier, page = _authorize(browser, shop)
    access = _token(_allow(browser, page), verifier, shop).json()["access_token"]
    api = Client(HTTP_AUTHORIZATION=f"Bearer {access}")
    assert api.get("/api/v1/me/grants").status_code == 200
    assert Client(HTTP_AUTHORIZATION=f"Bearer {access}").get("/o/userinfo/").status_code == 200

    from pumasi.communities.services import leave_community

    with django_capture_on_commit_callbacks(execute=True):
        leave_community(actor=shop["member"], community=shop["community"])
    # the member_left handler deleted the tokens: introspection can no longer find them
    assert not AccessToken.objects.filter(user=shop["member"]).exists()
    assert api.get("/api/v1/me/grants").status_code == 401
    assert Client(HTTP_AUTHORIZATION=f"Bearer {access}").get("/o/userinfo/").status_code == 401

    other = oidc.register_client(actor=shop["community"].organiser, community=shop["community"], name="Second",
                                 redirect_uris=[REDIRECT])[0]
    assert other.application is not None
    oidc.disable_client(actor=shop["community"].organiser, community=shop["community"], client_pk=shop["client"].pk)
    assert not AccessToken.objects.filter(application__pumasi_client=shop["client"]).exists()
    assert OidcClient.objects.get(pk=shop["client"].pk).application is None
    assert AuditEntry.objects.filter(action="oidc_client.disabled").count() == 1


def test_registration_and_grants_validate_and_need_an_organiser(community, member_of):
    member = member_of(community, "member")
    with pytest.raises(PermissionDenied):
        oidc.register_client(actor=member, community=community, name="x", redirect_uris=[REDIRECT])
    with pytest.raises(InvalidInput) as bad:
        oidc.register_client(actor=community.organiser, community=community, name="",
                             redirect_uris=["http://shop.example/cb", "ftp://x"], scopes=["openid", "root"])
    assert set(bad.value.field_errors) == {"name", "redirect_uris", "scopes"}
    with pytest.raises(InvalidInput) as bad_grant:
        oidc.grant_scope(actor=community.organiser, community=community, user=member, scope="not a scope")
    assert "scope" in bad_grant.value.field_errors
    oidc.grant_scope(actor=community.organiser, community=community, user=member, scope="production:product:1")
    with pytest.raises(InvalidInput):
        oidc.grant_scope(actor=community.organiser, community=community, user=member, scope="production:product:1")
    assert OidcClient.objects.count() == 0 and ScopedGrant.objects.count() == 1


def test_api_registers_clients_and_grants_with_problem_errors(community, member_of, api_client_for):
    organiser_api = api_client_for(community.organiser)
    created = organiser_api.post(f"/api/v1/communities/{community.slug}/oidc-clients",
                                 {"name": "ERP", "redirect_uris": ["https://erp.example/cb"]},
                                 content_type="application/json")
    assert created.status_code == 201 and created.json()["client_secret"]
    bad = organiser_api.post(f"/api/v1/communities/{community.slug}/oidc-clients",
                             {"name": "ERP", "redirect_uris": ["javascript:alert(1)"]}, content_type="application/json")
    assert bad.status_code == 422 and bad["Content-Type"] == "application/problem+json"
    member = member_of(community, "member")
    forbidden = api_client_for(member).get(f"/api/v1/communities/{community.slug}/oidc-clients")
    assert forbidden.status_code == 403
    grant = organiser_api.post(f"/api/v1/communities/{community.slug}/grants",
                               {"user_id": member.pk, "scope": "production:product:7"}, content_type="application/json")
    assert grant.status_code == 201
    revoked = organiser_api.delete(f"/api/v1/communities/{community.slug}/grants/{grant.json()['id']}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]


def _access_token(shop, person, scope: str = SCOPE) -> str:
    browser = Client()
    browser.force_login(person)
    verifier, page = _authorize(browser, shop, scope=scope)
    answer = _token(_allow(browser, page), verifier, shop)
    assert answer.status_code == 200, answer.content[:300]
    assert set(answer.json()["scope"].split()) == set(scope.split())
    return answer.json()["access_token"]


def test_a_client_token_is_confined_to_the_community_that_registered_the_client(shop, api_client_for):
    from pumasi.communities.models import Community, Invitation, Membership
    from pumasi.communities.services import create_invitation
    from pumasi.platform.models import Event
    from pumasi.sharing.services import create_zone
    from pumasi.tests.factories import CommunityFactory, MembershipFactory

    own = shop["community"]
    person = own.organiser  # organiser of the client's community A, and of community B as well
    other = CommunityFactory(name="Other street")
    MembershipFactory(community=other, user=person, role="organiser")
    third = CommunityFactory(name="Third street")
    third_organiser = UserFactory()
    MembershipFactory(community=third, user=third_organiser, role="organiser")
    invitation = create_invitation(actor=third_organiser, community=third)
    own_zone = create_zone(actor=person, community=own, name="A street", slug="a-street")
    other_zone = create_zone(actor=person, community=other, name="B street", slug="b-street")
    OidcClient.objects.filter(pk=shop["client"].pk).update(
        allowed_scopes=[*oidc.DEFAULT_CLIENT_SCOPES, "communities:write", "sharing:write"])
    access = _access_token(shop, person, scope=SCOPE + " communities:write sharing:write")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {access}")
    before = (AuditEntry.objects.count(), Event.objects.count(), Invitation.objects.count(),
              Membership.objects.count(), Community.objects.count())

    # another community of the same person: as if it did not exist, for reads and writes alike
    ghost = api.get("/api/v1/communities/no-such-community-x9")
    assert ghost.status_code == 404
    for method, url, body in [
        ("get", f"/api/v1/communities/{other.slug}", None),
        ("get", f"/api/v1/communities/{other.slug}/members", None),
        ("get", f"/api/v1/communities/{other.slug}/invitations", None),
        ("patch", f"/api/v1/communities/{other.slug}", {"name": "Taken over"}),
        ("post", f"/api/v1/communities/{other.slug}/invitations", {"role": "organiser"}),
        ("post", f"/api/v1/communities/{other.slug}/leave", None),
    ]:
        answer = getattr(api, method)(url, body, content_type="application/json") if body else getattr(api, method)(url)
        assert answer.status_code == 404, (method, url, answer.status_code)
        assert answer["Content-Type"] == "application/problem+json"
        assert answer.json() == ghost.json()  # no hint that it exists
    for method, url in [("get", f"/api/v1/sharing/zones/{other_zone.slug}/resources"),
                        ("post", f"/api/v1/sharing/zones/{other_zone.slug}/windows")]:
        answer = getattr(api, method)(url, {"starts": "x"}, content_type="application/json") \
            if method == "post" else api.get(url)
        assert answer.status_code == 404 and answer.json()["title"] == "No such zone.", (url, answer.content[:200])
    # what spans all of the person's communities is refused, or shows only the client's community
    for method, url, body in [
        ("get", "/api/v1/notifications", None), ("get", "/api/v1/feed", None), ("get", "/api/v1/follows", None),
        ("get", "/api/v1/sharing/bookings", None), ("get", "/api/v1/tokens", None),
        ("post", "/api/v1/communities", {"name": "New", "slug": "brand-new", "kind": "residents"}),
        ("post", "/api/v1/invitations/accept", {"token": invitation.token}),
        ("patch", "/api/v1/me", {"display_name": "Renamed"}),
    ]:
        answer = getattr(api, method)(url, body, content_type="application/json") if body else getattr(api, method)(url)
        assert answer.status_code == 403, (method, url, answer.status_code)
        assert answer.json()["code"] == "outside_client_community"
    assert [m["community_slug"] for m in api.get("/api/v1/me/memberships").json()] == [own.slug]
    assert [c["slug"] for c in api.get("/api/v1/communities").json()["items"]] == [own.slug]
    assert api.get("/api/v1/me").json()["id"] == person.pk
    after = (AuditEntry.objects.count(), Event.objects.count(), Invitation.objects.count(),
             Membership.objects.count(), Community.objects.count())
    assert after == before
    other.refresh_from_db()
    person.refresh_from_db()
    assert other.name == "Other street" and person.display_name != "Renamed"
    assert Membership.objects.filter(community=other, user=person, role="organiser").exists()

    # the same token works in its own community
    assert api.get(f"/api/v1/communities/{own.slug}/members").status_code == 200
    assert api.get(f"/api/v1/sharing/zones/{own_zone.slug}/resources").status_code == 200
    renamed = api.patch(f"/api/v1/communities/{own.slug}", {"name": "Renamed by the shop"},
                        content_type="application/json")
    assert renamed.status_code == 200 and renamed.json()["name"] == "Renamed by the shop"
    invited = api.post(f"/api/v1/communities/{own.slug}/invitations", {"role": "member"}, content_type="application/json")
    assert invited.status_code == 201
    assert Invitation.objects.filter(community=own).count() == 1
    # a personal access token of the same person is not confined
    assert api_client_for(person).get(f"/api/v1/communities/{other.slug}/members").status_code == 200
