"""Authorization matrix across every API operation with a community in its path, built from the
OpenAPI document so new endpoints are covered without editing this file.

Over the demo world (every capability's demo data, as `pumasi demo` seeds it):
- outsider: a person who organises another community only gets 404 on private operations,
  the same answer as for a community that does not exist (no hint that it exists); on public
  operations no more than an anonymous caller gets;
- scope: the community's organiser with a read-only token gets 403 on every write;
- roles: observer, member, committee and organiser read every operation without a 5xx;
and no refused request changes anything (audit entries and events stay as they were).
"""

from __future__ import annotations

import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from pumasi.communities.models import Membership, Role
from pumasi.platform.models import AuditEntry, Event
from pumasi.platform.services import TOKEN_SCOPES, create_api_token
from pumasi.platform.tests.world import fill_path, seed_world
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


def _call(client: Client, method: str, url: str, op: dict, components: dict):
    query = _query(op, components)
    content = op.get("requestBody", {}).get("content", {})
    if method == "get":
        return client.get(url, query)
    if query:
        url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    if "application/json" in content:
        body = json.dumps(sample(content["application/json"]["schema"], components))
        return getattr(client, method)(url, body, content_type="application/json")
    if "multipart/form-data" in content:
        return client.post(url, sample(content["multipart/form-data"]["schema"], components))
    return getattr(client, method)(url)


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
    from pumasi.platform.tests.world import zone_slug

    real = zone_slug(community) if "/sharing/zones/" in path else community.slug
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


def _state() -> tuple[int, int]:
    return AuditEntry.objects.count(), Event.objects.count()


@pytest.fixture
def world(client):
    world = seed_world()
    world.schema = client.get("/api/v1/openapi.json").json()
    return world


@pytest.mark.parametrize("check", ["outsider", "scope", "roles"])
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
    for method, path, op in operations:
        community, url, all_found = _community_for(path, world)
        filled += all_found
        name = f"{method.upper()} {path}"
        if check == "outsider":
            before = _state()
            anon = _call(anonymous, method, url, op, components)
            public = anon.status_code != 401
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
            if Client().generic(method.upper(), url).status_code != 401:
                continue  # public operation (anonymous visitors, signed device input): no token involved
            reader = _client(organiser, scopes=["read"])
            before = _state()
            answer = _call(reader, method, url, op, components)
            if answer.status_code != 403:
                failures.append(f"{name}: read-only token got {answer.status_code}: {answer.content[:120]!r}")
            if _state() != before:
                failures.append(f"{name}: a refused read-only request changed something")
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
