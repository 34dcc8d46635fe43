"""Schemathesis fuzzes the foundation's and the platform's API operations on a live server with a
token: no 5xx, and every response matches the published schema. Examples are capped so the run
stays near a minute; other capabilities' operations are fuzzed by their own owners' runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pumasi.platform import oidc, webhooks
from pumasi.platform.services import TOKEN_SCOPES, create_api_token

# The foundation (accounts, communities) and this app's operations. Invitations are left out until
# cocreation's InvitationOut stops overwriting the communities schema of the same name (reported).
# Creating webhooks is left out: with jobs run inline, a fuzzed receiver URL that does not answer
# would hold the test server's one worker for the delivery timeout (a test-mode artefact).
INCLUDE = (r"^/api/v1/(me|tokens|notifications.*|follows.*|feed|hooks/in/.*"
           r"|communities(/\{slug\}(/(members|audit|oidc-clients|grants|webhook-deliveries"
           r"|inbound-endpoints|feed)(/.*)?)?)?)$")


@pytest.mark.slow
def test_api_is_fuzz_clean(pumasi_server, community, member_of, tmp_path: Path):
    token, secret = create_api_token(user=community.organiser, name="fuzz", scopes=list(TOKEN_SCOPES))
    member_of(community)
    oidc.register_client(actor=community.organiser, community=community, name="Shop",
                         redirect_uris=["https://shop.example/cb"])
    webhooks.create_subscription(actor=community.organiser, community=community, url="http://127.0.0.1:9/h",
                                 event_types=["*"])
    # ERROR logging: the fixture pipes the server's output without reading it, and hundreds of
    # "Not Found" warnings would fill the pipe and stall the server (reported to the lead).
    server = pumasi_server({"PUMASI_API_RATE_LIMIT": "1000000", "PUMASI_LOG_LEVEL": "ERROR"})
    report = tmp_path / "events.ndjson"
    result = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", f"{server.url}/api/v1/openapi.json",
         "-H", f"Authorization: Bearer {secret}", "--checks", "not_a_server_error,response_schema_conformance",
         "--include-path-regex", INCLUDE, "--max-examples", "8", "--phases", "examples,coverage",
         "--max-time", "60", "--request-timeout", "30", "--seed", "1", "--no-color", "--workers", "1",
         "--report", "ndjson", "--report-ndjson-path", str(report), "--suppress-health-check", "all"],
        capture_output=True, text=True, timeout=240, cwd=tmp_path,  # its cache stays out of the repo
    )
    output = result.stdout + result.stderr
    assert "No operations" not in output and "operations" in output.lower(), output[-3000:]
    assert result.returncode == 0, output[-6000:]
    assert report.exists() and report.stat().st_size > 0
    # the run really exercised operations, not an empty selection
    lines = [json.loads(line) for line in report.read_text().splitlines() if line.strip()]
    assert len(lines) > 5
