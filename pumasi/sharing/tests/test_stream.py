"""The public board stream `/z/<slug>/board/stream` on a real `pumasi run`: no account needed, the
board now and after each change, only this zone's board events, and refused for a private board."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from django.utils import timezone

from pumasi.sharing import services
from pumasi.sharing.tests.conftest import Alley

NO_REDIS = {"PUMASI_REDIS_URL": ""}


class BoardStream:
    """An open board stream read with httpx; `next_board()` returns the next board event's data."""

    def __init__(self, base_url: str, slug: str, read_timeout: float = 5.0):
        self.client = httpx.Client(timeout=httpx.Timeout(10.0, read=read_timeout))
        self._context = self.client.stream("GET", f"{base_url}/z/{slug}/board/stream",
                                           headers={"Accept": "text/event-stream"})
        self.response = self._context.__enter__()
        self.lines = self.response.iter_lines()

    def next_board(self) -> tuple[int, dict]:
        fields: dict[str, str] = {}
        for line in self.lines:
            if line == "":
                if fields.get("event") == "board":
                    return int(fields["id"]), json.loads(fields["data"])
                fields = {}
            elif not line.startswith(":"):
                key, _, value = line.partition(":")
                fields[key] = value.removeprefix(" ")
        raise AssertionError("the stream ended")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._context.__exit__(None, None, None)
        self.client.close()


def post_reading(base_url: str, alley: Alley, code: str, occupied: bool, seq: int):
    body = json.dumps({"device": alley.devices[code].external_id, "occupied": occupied, "seq": seq,
                       "measured_at": timezone.now().isoformat()}).encode()
    response = httpx.post(f"{base_url}/api/v1/sharing/readings", content=body, timeout=10, headers={
        "Content-Type": "application/json", "X-Pumasi-Signature": services.sign(alley.secrets[code], body)})
    assert response.status_code == 202, response.text


@pytest.mark.django_db(transaction=True)
def test_signed_out_display_gets_the_board_and_each_change_pushed(pumasi_server, community, member_of):
    alley = Alley(community, member_of, slug="stream-alley")
    other = Alley(community, member_of, slug="other-alley")
    server = pumasi_server(NO_REDIS)
    with BoardStream(server.url, alley.zone.slug) as stream:
        assert stream.response.status_code == 200
        assert stream.response.headers["content-type"].startswith("text/event-stream")
        _, first = stream.next_board()
        assert first["board"]["zone"] == "stream-alley" and first["board"]["free"] == 0  # no sensor heard yet
        assert 'data-code="A2"' in first["html"]

        # Another zone's change is not this board's business; this zone's change arrives at once.
        post_reading(server.url, other, "A2", True, 1)
        started = time.monotonic()
        post_reading(server.url, alley, "A2", False, 1)
        event_id, board = stream.next_board()
        elapsed = time.monotonic() - started
        assert board["board"]["zone"] == "stream-alley"
        spaces = {s["code"]: s["status"] for s in board["board"]["spaces"]}
        assert spaces["A2"] == "free" and board["board"]["free"] == 1
        assert elapsed < 1.0, f"the board took {elapsed:.2f} s"
        assert event_id > 0

        post_reading(server.url, alley, "A2", True, 2)
        _, board = stream.next_board()
        assert {s["code"]: s["status"] for s in board["board"]["spaces"]}["A2"] == "occupied"
        assert 'data-status="occupied"' in board["html"]

        post_reading(server.url, alley, "A3", False, 1)
        _, board = stream.next_board()
        assert {s["code"]: s["status"] for s in board["board"]["spaces"]}["A3"] == "free"


@pytest.mark.django_db(transaction=True)
def test_private_or_unknown_board_stream_is_404(pumasi_server, community, member_of):
    alley = Alley(community, member_of, slug="quiet-alley")
    alley.zone.public_board = False
    alley.zone.save(update_fields=["public_board"])
    server = pumasi_server(NO_REDIS)
    for slug in ("quiet-alley", "no-such-alley"):
        response = httpx.get(f"{server.url}/z/{slug}/board/stream", timeout=10)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "not_found"
