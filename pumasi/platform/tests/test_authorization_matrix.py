"""Authorization matrix across every API operation with a community in its path, built from the
OpenAPI document so new endpoints are covered without editing this file.

Over the demo world (every capability's demo data, as `pumasi demo` seeds it):
- outsider: a person who organises another community only gets 404 on private operations,
  the same answer as for a community that does not exist (no hint that it exists); on public
  operations no more than an anonymous caller gets;
- scope: the community's organiser with a read-only token gets 403 on every write;
- roles: observer, member, committee and organiser read every operation without a 5xx;
- client: the OAuth token of a client application registered by a third community gets 404 on
  every operation that reads a token, though its person organises both demo communities;
and no refused request changes anything (audit entries and events stay as they were).

Writes by role (WRITE_RULES, written by hand from each app's permissions.py, services and api.py):
every write operation in the document is classified, and for each one each role is refused below
the least role that may do it and gets past authorization from there up, while a person from
another community is refused; every call is undone afterwards, so each role meets the same world.
"""

from __future__ import annotations

import json
import re
import uuid

import pytest
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client

from pumasi.communities.models import Membership, Role
from pumasi.platform.models import AuditEntry, Event
from pumasi.platform.services import TOKEN_SCOPES, create_api_token
from pumasi.platform.tests.world import (
    MISSING_ID,
    PATH_OBJECTS,
    add_missing_objects,
    fill_path,
    path_params,
    seed_world,
)
from pumasi.tests.factories import CommunityFactory, MembershipFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.slow]
WRITES = {"post", "put", "patch", "delete"}
GHOST = "no-such-community-x9"
PATTERN_CANDIDATES = ["2031-03", "2031-03-04", "10:00", "x", "abc", "a1", "P01", "ko", "KRW", "#336699", "production:x:1"]
PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360"
                    "00000000050001a5f645400000000049454e44ae426082")


def _operations(schema: dict) -> list[tuple[str, str, dict]]:
    return [(method, path, op) for path, item in sorted(schema["paths"].items()) if "{slug}" in path
            for method, op in item.items() if method in WRITES | {"get"}]


def _resolve(node: dict, components: dict) -> dict:
    while "$ref" in node:
        node = components["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def sample(node: dict, components: dict, depth: int = 0):
    """The smallest value a JSON schema accepts, so writes get past validation to authorization."""
    node = _resolve(node, components)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in node:
            options = [o for o in node[key] if _resolve(o, components).get("type") != "null"] or node[key]
            return sample(options[0], components, depth + 1)
    if "enum" in node:
        return node["enum"][0]
    if "default" in node and node["default"] is not None:
        return node["default"]
    kind = node.get("type")
    if kind == "string" and "pattern" in node:
        return next((c for c in PATTERN_CANDIDATES if re.search(node["pattern"], c)), "x")
    if kind == "string" and node.get("format") == "binary":
        return SimpleUploadedFile("evidence.png", PNG, content_type="image/png")
    if kind == "string":
        return {"date-time": "2031-03-04T10:00:00+09:00", "date": "2031-03-04", "partial-time": "10:00:00",
                "email": "someone@example.com", "uri": "https://example.com/"}.get(
            node.get("format"), "x" * max(node.get("minLength", 1), 1))
    if kind in ("integer", "number"):
        return max(node.get("minimum", 1), 1)
    if kind == "boolean":
        return True
    if kind == "array":
        return [sample(node.get("items", {}), components, depth + 1)] * node.get("minItems", 0) if depth < 6 else []
    if kind == "object" or "properties" in node:
        return {name: sample(node["properties"][name], components, depth + 1)
                for name in node.get("required", []) if name in node.get("properties", {})} if depth < 6 else {}
    return "x"


def _query(op: dict, components: dict) -> dict:
    return {p["name"]: sample(p.get("schema", {}), components) for p in op.get("parameters", [])
            if p["in"] == "query" and p.get("required")}


def _call(client: Client, method: str, url: str, op: dict, components: dict, body=None, **headers):
    query = _query(op, components)
    content = op.get("requestBody", {}).get("content", {})
    if method == "get":
        return client.get(url, query, **headers)
    if query:
        url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    if "application/json" in content:
        body = json.dumps(body if body is not None else sample(content["application/json"]["schema"], components))
        return getattr(client, method)(url, body, content_type="application/json", **headers)
    if "multipart/form-data" in content:
        return client.post(url, body if body is not None else sample(content["multipart/form-data"]["schema"], components),
                           **headers)
    return getattr(client, method)(url, **headers)


def _community_for(path: str, world):
    """The demo community whose data fills this path best (all objects found, if any has them)."""
    order = [world.maker, world.doksan] if path.startswith(("/api/v1/market/", "/api/v1/cocreation/")) \
        else [world.doksan, world.maker]
    filled = [(community, fill_path(path, community)) for community in order]
    for community, result in filled:
        if result is not None and result[1]:
            return community, result[0], True
    community, result = filled[0]
    assert result is not None, f"{path}: a path parameter has no entry in world.PATH_OBJECTS"
    return community, result[0], False


def _ghost(url: str, community, path: str) -> str:
    from pumasi.platform.tests.world import is_zone_path, zone_slug

    real = zone_slug(community) if is_zone_path(path) else community.slug
    return url.replace(f"/{real}/", f"/{GHOST}/", 1) if f"/{real}/" in url else url.replace(f"/{real}", f"/{GHOST}", 1)


def _publicly_visible(anonymous: Client, operations, community, path: str, seen: dict) -> bool:
    """Whether anyone may see this community in this capability (e.g. its shop): an anonymous
    caller reads some list of the same capability (same path before {slug}) for it."""
    capability = path[: path.index("{slug}")]
    if capability not in seen:
        lists = [p for m, p, _op in operations if m == "get" and p.startswith(capability) and p.count("{") == 1]
        seen[capability] = any(anonymous.get(p.replace("{slug}", community.slug)).status_code == 200 for p in lists)
    return seen[capability]


def _client(person, scopes=None) -> Client:
    _token, secret = create_api_token(user=person, name="matrix", scopes=list(scopes or TOKEN_SCOPES))
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


def _public_write(method: str, path: str) -> bool:
    """Signed input (a device's, a company system's) answers 401 for a missing signature, yet needs no account."""
    return WRITE_RULES.get((method.upper(), path.removeprefix(API))) == PUBLIC


def _state() -> tuple[int, int]:
    return AuditEntry.objects.count(), Event.objects.count()


@pytest.fixture
def world(client):
    world = seed_world()
    add_missing_objects(world)
    world.schema = client.get("/api/v1/openapi.json").json()
    return world


def _client_app_token(person, community) -> Client:
    """The OAuth access token of a client application registered by `community`, with every scope."""
    from datetime import timedelta

    from django.utils import timezone
    from oauth2_provider.models import AccessToken

    from pumasi.platform import oidc

    scopes = list(oidc.all_scopes())
    client, _secret = oidc.register_client(actor=person, community=community, name="Elsewhere shop",
                                           redirect_uris=["https://shop.example/cb"], scopes=scopes)
    secret = f"matrix-{uuid.uuid4().hex}"
    AccessToken.objects.create(user=person, application=client.application, token=secret, scope=" ".join(scopes),
                               expires=timezone.now() + timedelta(hours=1))
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


@pytest.mark.parametrize("check", ["outsider", "scope", "roles", "client"])
def test_authorization_matrix(world, check):
    components = world.schema["components"]
    operations = _operations(world.schema)
    assert len(operations) > 100  # every capability's operations, not a handful
    failures: list[str] = []
    filled = 0
    visible: dict[str, bool] = {}
    if check == "outsider":
        outsider = UserFactory(display_name="Outsider")
        MembershipFactory(community=CommunityFactory(), user=outsider, role=Role.ORGANISER)
        as_outsider, anonymous = _client(outsider), Client()
    if check == "client":
        person, elsewhere = UserFactory(display_name="Shop user"), CommunityFactory()
        for membership_of in (world.doksan, world.maker, elsewhere):
            MembershipFactory(community=membership_of, user=person, role=Role.ORGANISER)
        as_client = _client_app_token(person, elsewhere)
        assert as_client.get(f"/api/v1/communities/{elsewhere.slug}/members").status_code == 200
    for method, path, op in operations:
        community, url, all_found = _community_for(path, world)
        filled += all_found
        name = f"{method.upper()} {path}"
        if check == "outsider":
            before = _state()
            anon = _call(anonymous, method, url, op, components)
            public = anon.status_code != 401 or _public_write(method, path)
            if public and method in WRITES:
                before = _state()  # a public write (a visitor's booking) may change things; the outsider's may too
                answer = _call(as_outsider, method, url, op, components)
                if answer.status_code >= 500:
                    failures.append(f"{name}: outsider got {answer.status_code}")
                continue
            answer = _call(as_outsider, method, url, op, components)
            if public:
                if answer.status_code != anon.status_code:
                    failures.append(f"{name}: outsider got {answer.status_code}, anonymous {anon.status_code}")
            elif _publicly_visible(anonymous, operations, community, path, visible):
                # e.g. a public shop: an outsider is a visitor with an account; "my" lists are filtered
                # to them, and the community's own data stays refused
                if answer.status_code >= 500 or (method in WRITES and 200 <= answer.status_code < 300):
                    failures.append(f"{name}: outsider got {answer.status_code} in a publicly visible community")
            else:
                ghost = _call(as_outsider, method, _ghost(url, community, path), op, components)
                if answer.status_code != 404 or ghost.status_code != 404:
                    failures.append(f"{name}: outsider got {answer.status_code} (unknown community: "
                                    f"{ghost.status_code}), expected 404 for both")
            if 200 <= answer.status_code < 300:
                continue
            if _state() != before:
                failures.append(f"{name}: a refused outsider request changed something")
        elif check == "scope":
            if method not in WRITES:
                continue
            organiser = Membership.objects.filter(community=community, role=Role.ORGANISER).first().user
            if _public_write(method, path) or Client().generic(method.upper(), url).status_code != 401:
                continue  # public operation (anonymous visitors, signed device input): no token involved
            reader = _client(organiser, scopes=["read"])
            before = _state()
            answer = _call(reader, method, url, op, components)
            if answer.status_code != 403:
                failures.append(f"{name}: read-only token got {answer.status_code}: {answer.content[:120]!r}")
            if _state() != before:
                failures.append(f"{name}: a refused read-only request changed something")
        elif check == "client":
            if "security" not in op:
                continue  # auth=None (a public board, signed device input): no token is even read
            before = _state()
            answer = _call(as_client, method, url, op, components)
            if answer.status_code != 404 or _state() != before:
                failures.append(f"{name}: another community's client got {answer.status_code}"
                                f"{' and changed something' if _state() != before else ''}, expected 404")
        else:
            if method != "get":
                continue
            for role in (Role.OBSERVER, Role.MEMBER, Role.COMMITTEE, Role.ORGANISER):
                person = UserFactory()
                MembershipFactory(community=community, user=person, role=role)
                answer = _call(_client(person), method, url, op, components)
                if answer.status_code >= 500 or answer.status_code == 401:
                    failures.append(f"{name}: {role} got {answer.status_code}")
    assert not failures, f"{len(failures)} of {len(operations)} operations:\n" + "\n".join(failures)
    # the demo data reached most operations, so the matrix tests real objects, not missing ones
    assert filled / len(operations) > 0.6, f"only {filled} of {len(operations)} paths found demo objects"



# --- Writes by role --------------------------------------------------------------------------------

ROLES = (Role.OBSERVER, Role.MEMBER, Role.COMMITTEE, Role.ORGANISER)
RANK = {role: index for index, role in enumerate(ROLES)}
# Rules that are not a community role:
PARTY = "party"  # only the people tied to the object (its buyer, seller, holder...), whatever their role
SELF = "self"  # about the caller's own account: anyone signed in, whatever their roles
SESSION = "session"  # a signed-in browser only: every token is refused, whatever its scopes
PUBLIC = "public"  # no account needed (a visitor, a secret in the request or a signature decides)
HIDDEN = 404  # refused as "no such thing": those below the role may not even see the object

# (method, path under /api/v1) -> the least community role that may do it (refused with 403 below
# it, or with 404 where written (role, HIDDEN)), or one of the markers above. A new write operation
# fails test_every_write_operation_is_classified until someone adds it here.
WRITE_RULES: dict[tuple[str, str], str | tuple[str, int]] = {
    # communities: communities/permissions.py ACTIONS (edit, invite, change_role, remove_member: organiser)
    ("POST", "/communities"): SELF,  # anyone signed in may start a community
    ("PATCH", "/communities/{slug}"): Role.ORGANISER,
    ("PATCH", "/communities/{slug}/members/{membership_id}"): Role.ORGANISER,
    ("DELETE", "/communities/{slug}/members/{membership_id}"): Role.ORGANISER,
    ("POST", "/communities/{slug}/invitations"): Role.ORGANISER,
    ("DELETE", "/communities/{slug}/invitations/{invitation_id}"): Role.ORGANISER,
    ("POST", "/communities/{slug}/leave"): Role.OBSERVER,  # "leave": every member may
    ("POST", "/communities/{slug}/join"): SELF,  # anyone signed in, when the community is open to join
    ("POST", "/invitations/accept"): SELF,  # the invitation's token decides
    # platform: organisers run clients, grants, webhooks, inbound endpoints ("edit")
    ("POST", "/communities/{slug}/oidc-clients"): Role.ORGANISER,
    ("DELETE", "/communities/{slug}/oidc-clients/{client_id}"): Role.ORGANISER,
    ("POST", "/communities/{slug}/grants"): Role.ORGANISER,
    ("DELETE", "/communities/{slug}/grants/{grant_id}"): Role.ORGANISER,
    ("POST", "/communities/{slug}/webhooks"): Role.ORGANISER,
    ("PATCH", "/communities/{slug}/webhooks/{webhook_id}"): Role.ORGANISER,
    ("DELETE", "/communities/{slug}/webhooks/{webhook_id}"): Role.ORGANISER,
    ("POST", "/communities/{slug}/webhook-deliveries/{delivery_id}/replay"): Role.ORGANISER,
    ("POST", "/communities/{slug}/inbound-endpoints"): Role.ORGANISER,
    ("POST", "/hooks/in/{endpoint_id}"): PUBLIC,  # Standard Webhooks signature
    ("POST", "/tokens"): SESSION,  # a token may not mint tokens
    ("DELETE", "/tokens/{token_id}"): SELF,
    ("PATCH", "/me"): SELF,
    ("POST", "/me/calendar/rotate"): SELF,
    ("DELETE", "/me/calendar"): SELF,
    ("POST", "/follows"): SELF,
    ("DELETE", "/follows/{follow_id}"): SELF,
    ("PUT", "/notifications/preferences"): SELF,
    ("POST", "/notifications/read"): SELF,
    ("POST", "/push/subscriptions"): SELF,
    ("DELETE", "/push/subscriptions/{subscription_id}"): SELF,
    # ledger: ledger/permissions.py LEAST (participate: member, manage: committee, configure: organiser)
    ("POST", "/communities/{slug}/ledger/accounts"): Role.COMMITTEE,
    ("POST", "/communities/{slug}/ledger/transactions"): Role.COMMITTEE,
    ("POST", "/communities/{slug}/ledger/transactions/{transaction_id}/reversal"): Role.COMMITTEE,
    ("POST", "/communities/{slug}/ledger/split-rules"): Role.COMMITTEE,
    ("POST", "/communities/{slug}/ledger/split-rules/{rule_id}/versions"): Role.COMMITTEE,
    ("POST", "/communities/{slug}/ledger/income"): Role.COMMITTEE,
    ("PATCH", "/communities/{slug}/ledger/settings"): Role.ORGANISER,
    ("POST", "/communities/{slug}/ledger/settlements"): Role.COMMITTEE,
    ("POST", "/communities/{slug}/ledger/escrows"): Role.MEMBER,  # the caller is the buyer
    ("POST", "/communities/{slug}/ledger/escrows/{escrow_id}/approvals"): PARTY,  # buyer, seller, moderator
    ("POST", "/communities/{slug}/ledger/escrows/{escrow_id}/dispute"): PARTY,  # buyer or moderator
    ("POST", "/communities/{slug}/ledger/escrows/{escrow_id}/release"): PARTY,  # the seller
    ("POST", "/communities/{slug}/ledger/pools"): Role.COMMITTEE,
    ("POST", "/communities/{slug}/ledger/pools/{pool_id}/members"): Role.MEMBER,
    ("POST", "/communities/{slug}/ledger/pools/{pool_id}/contributions"): PARTY,  # the pool's members
    ("POST", "/communities/{slug}/ledger/pools/{pool_id}/claims"): PARTY,  # the pool's members
    ("POST", "/communities/{slug}/ledger/pools/{pool_id}/claims/{claim_id}/decision"): Role.COMMITTEE,
    ("POST", "/communities/{slug}/ledger/pools/{pool_id}/year-end"): Role.COMMITTEE,
    # co-creation: cocreation/permissions.py (participate: member; manage: committee; workspaces:
    # managers are committee and up, collaborators and experts are people a manager let in)
    ("POST", "/communities/{slug}/idea-boards"): Role.COMMITTEE,
    ("POST", "/communities/{slug}/idea-boards/{board_id}/ideas"): Role.MEMBER,
    ("POST", "/communities/{slug}/idea-boards/{board_id}/ideas/with-images"): Role.MEMBER,
    ("POST", "/communities/{slug}/ideas/{idea_id}/comments"): Role.MEMBER,
    ("PUT", "/communities/{slug}/ideas/{idea_id}/follow"): Role.MEMBER,
    ("DELETE", "/communities/{slug}/ideas/{idea_id}/follow"): Role.MEMBER,
    ("POST", "/communities/{slug}/ideas/{idea_id}/support"): Role.MEMBER,
    ("DELETE", "/communities/{slug}/ideas/{idea_id}/support"): Role.MEMBER,
    ("POST", "/communities/{slug}/ideas/{idea_id}/merge"): Role.COMMITTEE,
    ("POST", "/communities/{slug}/ideas/{idea_id}/status"): Role.COMMITTEE,
    ("POST", "/communities/{slug}/surveys"): Role.COMMITTEE,
    ("PATCH", "/communities/{slug}/surveys/{survey_id}"): Role.COMMITTEE,
    ("POST", "/communities/{slug}/surveys/{survey_id}/close"): Role.COMMITTEE,
    ("POST", "/communities/{slug}/surveys/{survey_id}/invitations"): Role.COMMITTEE,
    ("POST", "/communities/{slug}/surveys/{survey_id}/questions"): Role.COMMITTEE,
    ("POST", "/communities/{slug}/surveys/{survey_id}/responses"): Role.MEMBER,
    ("POST", "/survey-invitations/{token}/response"): PUBLIC,  # the invitation's token
    ("POST", "/communities/{slug}/workspaces"): Role.COMMITTEE,
    ("PATCH", "/communities/{slug}/workspaces/{workspace_id}"): Role.COMMITTEE,
    # Any member of the community, observers included, may apply to an open call (a manager decides).
    ("POST", "/communities/{slug}/workspaces/{workspace_id}/applications"): Role.OBSERVER,
    ("POST", "/communities/{slug}/workspaces/{workspace_id}/applications/{application_id}/decision"): Role.COMMITTEE,
    ("POST", "/communities/{slug}/workspaces/{workspace_id}/calendar/revoke"): Role.COMMITTEE,
    ("POST", "/communities/{slug}/workspaces/{workspace_id}/collaborators"): Role.COMMITTEE,
    ("POST", "/communities/{slug}/workspaces/{workspace_id}/documents"): Role.COMMITTEE,  # or a collaborator
    ("PUT", "/communities/{slug}/workspaces/{workspace_id}/documents/{document_id}"): Role.COMMITTEE,  # or one
    ("POST", "/communities/{slug}/workspaces/{workspace_id}/milestones"): Role.COMMITTEE,  # or a collaborator
    ("PATCH", "/communities/{slug}/workspaces/{workspace_id}/milestones/{milestone_id}"): Role.COMMITTEE,
    ("POST", "/communities/{slug}/workspaces/{workspace_id}/threads"): Role.COMMITTEE,  # or a collaborator
    ("POST", "/communities/{slug}/workspaces/{workspace_id}/threads/{thread_id}/posts"): Role.COMMITTEE,
    # design calls and production: market/permissions.py (organisers run the shop; a designer acts on
    # their own product while their production right is active; others may not see production)
    ("POST", "/cocreation/{slug}/design-calls"): Role.ORGANISER,
    ("POST", "/cocreation/{slug}/design-calls/{call_id}/designs"): Role.MEMBER,
    ("POST", "/cocreation/{slug}/designs/{design_id}/score"): Role.MEMBER,
    ("POST", "/cocreation/{slug}/designs/{design_id}/select"): Role.ORGANISER,
    ("POST", "/cocreation/{slug}/production/{product_id}/requests"): (Role.ORGANISER, HIDDEN),  # or the designer
    ("POST", "/cocreation/{slug}/production-orders/{order_id}/status"): (Role.ORGANISER, HIDDEN),
    # market
    ("POST", "/market/{slug}/products"): Role.ORGANISER,
    ("PATCH", "/market/{slug}/products/{product_id}/costs"): Role.ORGANISER,
    ("PATCH", "/market/{slug}/products/{product_id}/price"): Role.ORGANISER,  # or the designer with the right
    ("POST", "/market/{slug}/products/{product_id}/list"): Role.ORGANISER,
    ("POST", "/market/{slug}/products/{product_id}/end"): Role.ORGANISER,
    ("POST", "/market/{slug}/products/{product_id}/stock"): Role.ORGANISER,
    ("POST", "/market/{slug}/products/{product_id}/orders"): PUBLIC,  # members, or guests in a public shop
    ("POST", "/market/{slug}/orders/{number}/confirm-payment"): (Role.ORGANISER, HIDDEN),
    ("POST", "/market/{slug}/orders/{number}/cancel"): (Role.ORGANISER, HIDDEN),  # or its buyer (or order token)
    ("POST", "/market/{slug}/orders/{number}/refund"): (Role.ORGANISER, HIDDEN),
    ("POST", "/market/{slug}/orders/{number}/ship"): (Role.ORGANISER, HIDDEN),
    ("POST", "/market/{slug}/orders/{number}/shipping-events"): (Role.ORGANISER, HIDDEN),
    ("POST", "/market/{slug}/orders/{number}/review"): PARTY,  # its buyer
    ("PATCH", "/market/{slug}/settings"): Role.ORGANISER,
    ("POST", "/market/{slug}/settlements"): Role.ORGANISER,
    # sharing: sharing/permissions.py ACTIONS (book: member, decide: committee, manage: organiser)
    ("POST", "/sharing/zones/{slug}/bookings"): Role.MEMBER,
    ("POST", "/sharing/bookings/{booking_id}/{action}"): (Role.COMMITTEE, HIDDEN),  # or the booker
    ("POST", "/sharing/zones/{slug}/windows"): Role.COMMITTEE,
    ("POST", "/sharing/zones/{slug}/upkeep-costs"): Role.COMMITTEE,
    ("POST", "/sharing/zones/{slug}/devices"): Role.ORGANISER,
    ("POST", "/sharing/zones/{slug}/resources/{code}/sharing"): PARTY,  # the space's holder
    ("POST", "/sharing/zones/{slug}/visitor-bookings"): PUBLIC,  # where the zone allows visitors
    ("POST", "/sharing/visitor-bookings/{reference}/{action}"): PUBLIC,  # the booking's reference
    ("POST", "/sharing/readings"): PUBLIC,  # the device's signature
    ("POST", "/sharing/ingest/tts/{slug}"): PUBLIC,  # the zone's ingest secret
    ("POST", "/sharing/ingest/chirpstack/{slug}"): PUBLIC,
}


def _ids(label: str, community, count: int = 1, field: str = "pk", to_community: str = "community") -> list:
    model = apps.get_model(label)
    found = list(model.objects.filter(**{to_community: community}).order_by("pk").values_list(field, flat=True)[:count])
    assert len(found) == count, f"the demo world has fewer than {count} {label} in {community.slug}"
    return found


def _shares(community) -> list[dict]:
    return [{"account_id": _ids("ledger.Account", community)[0], "basis_points": 10000}]


# Bodies for operations whose generic sample fails validation before authorization is asked: the API
# looks up the objects a body names (an account, a rule, another idea) before the service asks for the
# role, and an id of 1 exists only by luck.
BODIES = {
    ("POST", "/communities/{slug}/ledger/settlements"): lambda community: {"period": "2031-03"},
    ("POST", "/communities/{slug}/ledger/transactions"): lambda community: {"postings": [
        {"account_id": a, "amount": amount} for a, amount in zip(_ids("ledger.Account", community, 2), (1, -1), strict=True)]},
    ("POST", "/communities/{slug}/ledger/split-rules"): lambda community: {"name": "x", "shares": _shares(community)},
    ("POST", "/communities/{slug}/ledger/split-rules/{rule_id}/versions"): lambda community: {
        "shares": _shares(community)},
    ("POST", "/communities/{slug}/ledger/income"): lambda community: {
        "rule_id": _ids("ledger.SplitRule", community)[0], "amount": 1000},
    ("POST", "/communities/{slug}/ideas/{idea_id}/merge"): lambda community: {
        "target_id": _ids("cocreation.Idea", community, 2)[1]},  # the path names the first idea
    ("POST", "/sharing/zones/{slug}/bookings"): lambda community: {
        "code": _ids("sharing.Resource", community, field="code", to_community="zone__community")[0],
        "starts_at": "2031-03-04T10:00:00+09:00", "ends_at": "2031-03-04T12:00:00+09:00"},
}
API = "/api/v1"


def _writes(schema: dict) -> list[tuple[str, str, dict]]:
    return [(method.upper(), path.removeprefix(API), op) for path, item in sorted(schema["paths"].items())
            for method, op in item.items() if method in WRITES]


def test_every_write_operation_is_classified(client):
    writes = {(method, path) for method, path, _op in _writes(client.get("/api/v1/openapi.json").json())}
    unclassified = sorted(writes - WRITE_RULES.keys())
    assert not unclassified, "say who may do these in WRITE_RULES:\n" + "\n".join(map(" ".join, unclassified))
    gone = sorted(WRITE_RULES.keys() - writes)
    assert not gone, "no longer in the API; remove from WRITE_RULES:\n" + "\n".join(map(" ".join, gone))


def _target(path: str, world):
    """(community, url, all objects found) for any operation: a community operation is filled from
    the demo world; a personal one gets ids that exist nowhere."""
    if "{slug}" in path or any(name in PATH_OBJECTS for name in path_params(path)):
        return _community_for(API + path, world)
    url = re.sub(r"\{(\w+)\}", lambda m: str(MISSING_ID) if m.group(1).endswith("_id") else "missing", path)
    return world.doksan, API + url, False


def _attempt(caller: Client, method: str, url: str, op: dict, components: dict, body):
    """One call, undone afterwards so that the next caller meets the same world:
    (status, whether it changed anything, the start of the answer)."""
    with transaction.atomic():
        before = _state()
        answer = _call(caller, method.lower(), url, op, components, body,
                       HTTP_IDEMPOTENCY_KEY=f"matrix-{uuid.uuid4().hex}")
        outcome = answer.status_code, _state() != before, answer.content[:140]
        transaction.set_rollback(True)
    return outcome


def test_writes_by_role(world):
    components = world.schema["components"]
    writes = [(m, p, op) for m, p, op in _writes(world.schema) if (m, p) in WRITE_RULES]
    assert len(writes) > 90
    callers: dict[tuple[int, str], Client] = {}

    def caller(community, role: str) -> Client:
        if (community.pk, role) not in callers:
            person = UserFactory()
            # an outsider organises another community: roles elsewhere give nothing here
            MembershipFactory(community=community if role in RANK else CommunityFactory(), user=person,
                              role=role if role in RANK else Role.ORGANISER)
            callers[community.pk, role] = _client(person)
        return callers[community.pk, role]

    failures: list[str] = []
    for method, path, op in writes:
        rule = WRITE_RULES[method, path]
        least, refused = rule if isinstance(rule, tuple) else (rule, 403)
        community, url, all_found = _target(path, world)
        body = BODIES[method, path](community) if (method, path) in BODIES else None
        name = f"{method} {path}"
        if least == PUBLIC:
            for who in ("anonymous", *ROLES):
                status, _changed, text = _attempt(Client() if who == "anonymous" else caller(community, who),
                                                  method, url, op, components, body)
                if status >= 500:
                    failures.append(f"{name}: {who} got {status}: {text!r}")
            continue
        for who in (*ROLES, "outsider"):
            status, changed, text = _attempt(caller(community, who), method, url, op, components, body)
            if least == SELF:
                allowed = status not in (401, 403) and status < 500
                expected = "past authorization"
            elif least == SESSION or least == PARTY or who == "outsider":
                allowed = status in (403, 404) and not changed
                expected = "403 or 404, nothing changed"
            elif RANK[who] < RANK[least]:
                allowed = status == refused and not changed
                expected = f"{refused}, nothing changed"
            else:
                # past authorization: a success, or 409/422 for the sample body or the object's state
                allowed = status < 500 and status not in (401, 403) and (status != 404 or not all_found)
                expected = "past authorization"
            if not allowed:
                failures.append(f"{name}: {who} got {status}{' and changed something' if changed else ''}, "
                                f"expected {expected}: {text!r}")
    assert not failures, f"{len(failures)} of {len(writes) * 5} write checks:\n" + "\n".join(failures)
