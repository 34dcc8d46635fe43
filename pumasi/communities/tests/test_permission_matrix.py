"""Role × action × own-or-other community, through the API and the pages alike.

Each row says which roles may do the action; everyone else is refused (403 for a member
whose role is too low, 404 for an outsider so a closed community does not reveal itself).
"""

from __future__ import annotations

import json

import pytest
from django.test import Client

from pumasi.communities.models import Invitation, Membership
from pumasi.platform.models import AuditEntry
from pumasi.tests.factories import PASSWORD

ROLES = ["observer", "member", "committee", "organiser"]

# action: (method, path template, body, roles allowed, success status)
API_ACTIONS = {
    "read community": ("get", "/api/v1/communities/{slug}", None, ROLES, 200),
    "list members": ("get", "/api/v1/communities/{slug}/members", None, ROLES, 200),
    "update community": ("patch", "/api/v1/communities/{slug}", {"description": "changed"}, ["organiser"], 200),
    "create invitation": ("post", "/api/v1/communities/{slug}/invitations", {"role": "member"}, ["organiser"], 201),
    "list invitations": ("get", "/api/v1/communities/{slug}/invitations", None, ["organiser"], 200),
    "change role": ("patch", "/api/v1/communities/{slug}/members/{target}", {"role": "committee"}, ["organiser"], 200),
    "read audit log": ("get", "/api/v1/communities/{slug}/audit", None, ["organiser"], 200),
}

PAGE_ACTIONS = {
    "home": ("/c/{slug}/", ROLES),
    "members": ("/c/{slug}/members/", ROLES),
    "invitations": ("/c/{slug}/invitations/", ["organiser"]),
    "audit log": ("/c/{slug}/audit/", ["organiser"]),
}


@pytest.fixture
def two_communities(community, member_of, make_user):
    """Community A with one person per role and a target member; community B elsewhere."""
    people = {role: member_of(community, role) for role in ROLES}
    people["outsider"] = make_user()
    target = member_of(community, "member")
    other = type(community).objects.create(name="Other", slug="other-one", kind="cooperative")
    other_organiser = make_user()
    Membership.objects.create(community=other, user=other_organiser, role="organiser")
    return {"a": community, "b": other, "people": people, "target": Membership.objects.get(user=target),
            "b_organiser": other_organiser}


def _call(client, method, path, body):
    if body is None:
        return getattr(client, method)(path)
    return getattr(client, method)(path, data=json.dumps(body), content_type="application/json")


@pytest.mark.parametrize("action", sorted(API_ACTIONS))
@pytest.mark.parametrize("who", [*ROLES, "outsider"])
def test_api_matrix(two_communities, api_client_for, action, who):
    method, template, body, allowed, ok_status = API_ACTIONS[action]
    world = two_communities
    path = template.format(slug=world["a"].slug, target=world["target"].pk)
    client = api_client_for(world["people"][who])
    before = (AuditEntry.objects.count(), Invitation.objects.count(), world["target"].role)
    response = _call(client, method, path, body)
    if who in allowed:
        assert response.status_code == ok_status, response.content
    else:
        assert response.status_code == (404 if who == "outsider" else 403), response.content
        assert response["Content-Type"] == "application/problem+json"
        world["target"].refresh_from_db()
        assert (AuditEntry.objects.count(), Invitation.objects.count(), world["target"].role) == before


@pytest.mark.parametrize("action", sorted(API_ACTIONS))
def test_api_organiser_of_b_cannot_touch_a(two_communities, api_client_for, action):
    method, template, body, _allowed, _ok = API_ACTIONS[action]
    world = two_communities
    path = template.format(slug=world["a"].slug, target=world["target"].pk)
    response = _call(api_client_for(world["b_organiser"]), method, path, body)
    assert response.status_code == 404


def test_api_cannot_reach_a_member_of_b_through_a(two_communities, api_client_for):
    """Membership ids are looked up inside the community in the path, never globally."""
    world = two_communities
    b_membership = Membership.objects.get(community=world["b"], user=world["b_organiser"])
    organiser_a = api_client_for(world["a"].organiser)
    response = _call(organiser_a, "patch", f"/api/v1/communities/{world['a'].slug}/members/{b_membership.pk}",
                     {"role": "observer"})
    assert response.status_code == 404
    b_membership.refresh_from_db()
    assert b_membership.role == "organiser"


@pytest.mark.parametrize("page", sorted(PAGE_ACTIONS))
@pytest.mark.parametrize("who", [*ROLES, "outsider"])
def test_page_matrix(two_communities, page, who):
    template, allowed = PAGE_ACTIONS[page]
    world = two_communities
    client = Client()
    assert client.login(email=world["people"][who].email, password=PASSWORD)
    response = client.get(template.format(slug=world["a"].slug))
    if who in allowed:
        assert response.status_code == 200
    else:
        assert response.status_code == (404 if who == "outsider" else 403)


def test_page_change_role_by_member_is_refused(two_communities):
    world = two_communities
    client = Client()
    client.login(email=world["people"]["member"].email, password=PASSWORD)
    response = client.post(f"/c/{world['a'].slug}/members/{world['target'].pk}/role/", {"role": "organiser"})
    world["target"].refresh_from_db()
    assert world["target"].role == "member"
    assert response.status_code in (302, 403)


def test_signed_out_pages_redirect_to_login(two_communities):
    response = Client().get(f"/c/{two_communities['a'].slug}/members/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
