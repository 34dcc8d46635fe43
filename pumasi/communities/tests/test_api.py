"""The communities API: create, validate, paginate, invite and join — answers and refusals."""

from __future__ import annotations

import json

from django.test import Client

from pumasi.communities.models import Community, Membership
from pumasi.tests.factories import PASSWORD


def post(client, path, body):
    return client.post(path, data=json.dumps(body), content_type="application/json")


def test_create_community_via_api(api_client_for, user):
    client = api_client_for(user)
    response = post(client, "/api/v1/communities", {"name": "우리동네", "slug": "our-town", "kind": "cooperative"})
    assert response.status_code == 201
    assert response.json()["slug"] == "our-town"
    assert Membership.objects.get(user=user, community__slug="our-town").role == "organiser"


def test_invalid_fields_answer_problem_json_per_field(api_client_for, user):
    client = api_client_for(user)
    response = post(client, "/api/v1/communities", {"name": "X", "slug": "Bad Slug!", "kind": "club", "currency": "XYZ"})
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert set(body["errors"]) >= {"slug", "kind", "currency"}
    assert not Community.objects.exists()


def test_schema_errors_are_problem_json(api_client_for, user):
    response = post(api_client_for(user), "/api/v1/communities", {"slug": "x"})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_input" and "name" in body["errors"]


def test_malformed_json_is_a_clear_error(api_client_for, user):
    response = api_client_for(user).post("/api/v1/communities", data="{not json", content_type="application/json")
    assert response.status_code in (400, 422)
    assert response["Content-Type"] == "application/problem+json"


def test_token_without_scope_cannot_write(api_client_for, user):
    client = api_client_for(user, scopes=["read"])
    response = post(client, "/api/v1/communities", {"name": "A", "slug": "aaa", "kind": "residents"})
    assert response.status_code == 403
    assert "communities:write" in response.json()["title"]
    assert not Community.objects.exists()


def test_members_cursor_pagination(community, member_of, api_client_for):
    for _ in range(7):
        member_of(community)
    client = api_client_for(community.organiser)
    seen, cursor = [], None
    while True:
        url = f"/api/v1/communities/{community.slug}/members?limit=3" + (f"&cursor={cursor}" if cursor else "")
        body = client.get(url).json()
        seen += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 8
    bad = client.get(f"/api/v1/communities/{community.slug}/members?cursor=%%%")
    assert bad.status_code == 422


def test_invite_and_accept_via_api(community, api_client_for, make_user):
    organiser = api_client_for(community.organiser)
    invitation = post(organiser, f"/api/v1/communities/{community.slug}/invitations", {"role": "committee", "days_valid": 3})
    assert invitation.status_code == 201
    token = invitation.json()["url"].rstrip("/").rsplit("/", 1)[-1]
    newcomer = api_client_for(make_user())
    joined = post(newcomer, "/api/v1/invitations/accept", {"token": token})
    assert joined.status_code == 201 and joined.json()["role"] == "committee"
    again = post(newcomer, "/api/v1/invitations/accept", {"token": token})
    assert again.status_code == 409 and again.json()["code"] == "already_member"


def test_revoked_invitation_via_api(community, api_client_for, make_user):
    organiser = api_client_for(community.organiser)
    created = post(organiser, f"/api/v1/communities/{community.slug}/invitations", {}).json()
    revoked = organiser.delete(f"/api/v1/communities/{community.slug}/invitations/{created['id']}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    token = created["url"].rstrip("/").rsplit("/", 1)[-1]
    response = post(api_client_for(make_user()), "/api/v1/invitations/accept", {"token": token})
    assert response.status_code == 409 and "revoked" in response.json()["title"]


def test_removing_last_organiser_is_refused_via_api(community, api_client_for):
    client = api_client_for(community.organiser)
    membership = Membership.objects.get(user=community.organiser)
    response = client.delete(f"/api/v1/communities/{community.slug}/members/{membership.pk}")
    assert response.status_code == 409 and response.json()["code"] == "last_organiser"
    assert Membership.objects.filter(pk=membership.pk).exists()


def test_session_auth_needs_csrf_for_writes(user):
    client = Client(enforce_csrf_checks=True)
    client.login(email=user.email, password=PASSWORD)
    assert client.get("/api/v1/me").status_code == 200
    response = post(client, "/api/v1/communities", {"name": "A", "slug": "aaa", "kind": "residents"})
    assert response.status_code in (401, 403)
    assert not Community.objects.exists()


def test_unknown_api_path_is_problem_json(client):
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


def test_openapi_document_lists_foundation_paths(client):
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert {"/api/v1/me", "/api/v1/communities", "/api/v1/communities/{slug}/audit", "/api/v1/tokens"} <= set(paths)


def test_audit_api_shows_changes(community, member_of, api_client_for):
    person = member_of(community)
    client = api_client_for(community.organiser)
    membership = Membership.objects.get(user=person)
    client.patch(f"/api/v1/communities/{community.slug}/members/{membership.pk}",
                 data=json.dumps({"role": "committee"}), content_type="application/json")
    items = client.get(f"/api/v1/communities/{community.slug}/audit").json()["items"]
    assert items[0]["action"] == "membership.role_changed"
    assert items[0]["changes"] == {"role": ["member", "committee"]}
    assert items[0]["actor_id"] == community.organiser.pk
