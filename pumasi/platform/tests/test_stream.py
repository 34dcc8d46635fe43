"""The live event stream on a real `pumasi run`: delivery, isolation, resume, refusal, and
across two server processes (PostgreSQL + Redis on that leg, two SQLite processes polling on the other)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from pumasi.platform.models import Event
from pumasi.platform.tests.helpers import EventStream, bearer, on_postgres, required_redis_url, token_for
from pumasi.tests.factories import CommunityFactory, MembershipFactory, UserFactory

NO_REDIS = {"PUMASI_REDIS_URL": ""}


def _invite(base_url: str, secret: str, slug: str) -> int:
    response = httpx.post(f"{base_url}/api/v1/communities/{slug}/invitations", json={}, headers=bearer(secret),
                          timeout=10)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_member_receives_their_communitys_event_and_an_outsider_does_not(pumasi_server, community, member_of):
    server = pumasi_server(NO_REDIS)
    member = member_of(community)
    other = CommunityFactory()
    outsider = UserFactory()
    MembershipFactory(community=other, user=outsider, role="organiser")
    organiser_secret = token_for(community.organiser)

    with EventStream(server.url, token_for(member)) as mine, EventStream(server.url, token_for(outsider)) as theirs:
        invitation_id = _invite(server.url, organiser_secret, community.slug)
        event = mine.next_event()
        assert event["name"] == "communities.invitation_created"
        assert event["community_id"] == community.pk
        assert event["payload"] == {"invitation_id": invitation_id}
        assert event["id"] == Event.objects.get(name="communities.invitation_created", community=community).pk

        # The outsider's next event must be their own community's, published after ours.
        other_invitation = _invite(server.url, token_for(outsider), other.slug)
        seen = theirs.next_event()
        assert (seen["community_id"], seen["payload"]) == (other.pk, {"invitation_id": other_invitation})


def test_last_event_id_replays_what_was_missed(pumasi_server, community, member_of):
    server = pumasi_server(NO_REDIS)
    member_secret = token_for(member_of(community))
    organiser_secret = token_for(community.organiser)
    with EventStream(server.url, member_secret) as stream:
        _invite(server.url, organiser_secret, community.slug)
        last_seen = stream.next_event()["id"]

    missed = [_invite(server.url, organiser_secret, community.slug) for _ in range(3)]
    with EventStream(server.url, member_secret, last_event_id=last_seen) as stream:
        replayed = [stream.next_event() for _ in missed]
        assert [event["payload"]["invitation_id"] for event in replayed] == missed
        assert all(event["id"] > last_seen for event in replayed)
        # And it goes on live after the replay, without repeating anything.
        live = _invite(server.url, organiser_secret, community.slug)
        assert stream.next_event()["payload"] == {"invitation_id": live}


@pytest.mark.parametrize("secret", [None, "pms_deadbeef_not-a-real-token"])
def test_stream_without_valid_credentials_is_401_problem(pumasi_server, secret):
    server = pumasi_server(NO_REDIS)
    with EventStream(server.url, secret) as stream:
        assert stream.response.status_code == 401
        assert stream.response.headers["content-type"] == "application/problem+json"
        stream.response.read()
        assert stream.response.json()["code"] == "unauthenticated"


def test_token_without_read_scope_gets_403_problem(pumasi_server, community):
    server = pumasi_server(NO_REDIS)
    with EventStream(server.url, token_for(community.organiser, scopes=["communities:write"])) as stream:
        assert stream.response.status_code == 403
        assert stream.response.headers["content-type"] == "application/problem+json"
        stream.response.read()
        assert stream.response.json()["code"] == "forbidden"


def test_event_crosses_processes_within_a_second(pumasi_server, community, member_of):
    """Two app processes; the stream listens on one, the event is published through the other.

    PostgreSQL leg: both on PostgreSQL, announced through Redis (required there). SQLite leg:
    two processes on one SQLite file without Redis, found by the hub's poll."""
    env = {"PUMASI_REDIS_URL": required_redis_url(db=12)} if on_postgres() else NO_REDIS
    listening, publishing = pumasi_server(env), pumasi_server(env)
    organiser_secret = token_for(community.organiser)
    # Warm the publishing process up, so its first-request imports are not counted.
    assert httpx.get(f"{publishing.url}/api/v1/me", headers=bearer(organiser_secret), timeout=10).status_code == 200

    with EventStream(listening.url, token_for(member_of(community))) as stream:
        latencies = []
        for _ in range(3):
            started = time.perf_counter()
            invitation_id = _invite(publishing.url, organiser_secret, community.slug)
            event = stream.next_event()
            latencies.append(time.perf_counter() - started)
            assert event["payload"] == {"invitation_id": invitation_id}
    assert max(latencies) < 1.0, f"cross-process delivery took {latencies} s"


def test_disconnect_ends_the_stream_and_leaves_nothing_running(transactional_db, user):
    """In-process ASGI call: when the client goes away, the stream's tasks end and it unsubscribes."""
    from pumasi.asgi import application, hub

    secret = token_for(user, scopes=["read"])
    sent: list[dict] = []

    async def scenario() -> set:
        connected = asyncio.Event()

        async def receive():
            await connected.wait()
            return {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)
            if b": connected" in message.get("body", b""):
                connected.set()

        scope = {"type": "http", "path": "/events/stream", "method": "GET", "query_string": b"",
                 "headers": [(b"authorization", f"Bearer {secret}".encode())]}
        await asyncio.wait_for(application(scope, receive, send), timeout=5)
        await asyncio.sleep(0)
        # The hub's own tasks live on for the next stream; nothing of this stream may.
        return {task.get_coro().__qualname__ for task in asyncio.all_tasks() if not task.done()} & {
            "_pump", "_wait_disconnect", "Queue.get", "serve_stream"}

    leftovers = asyncio.run(scenario())
    assert sent[0]["status"] == 200
    assert leftovers == set()
    assert not hub.subscribers
