"""Schemathesis fuzzes the whole API (/api/v1/openapi.json, every capability) on a live server over
the demo world: examples, coverage and fuzzing phases, no 5xx, every response matches the schema.

Bounded by --max-time. Two things keep the run honest: the path's community slug is pinned per
capability, so operations reach real communities instead of 404 on random slugs; and revoking
tokens is left out, because the fuzzer guessing id 1 revoked its own credential and every later
request was refused (token revocation has its own tests in test_health_and_tokens.py).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from pumasi.communities.models import Membership, Role
from pumasi.platform.services import TOKEN_SCOPES, create_api_token
from pumasi.platform.tests.world import seed_world, zone_slug
from pumasi.tests.factories import UserFactory

FUZZ_SECONDS = 90
METHODS = {"get", "post", "put", "patch", "delete"}


def _config(world) -> str:
    zone = zone_slug(world.doksan) or "no-zone"
    return f"""
[parameters]
"path.slug" = "{world.doksan.slug}"

[[operations]]
include-path-regex = "^/api/v1/(market|cocreation)/"
parameters = {{ "path.slug" = "{world.maker.slug}" }}

[[operations]]
include-path-regex = "^/api/v1/sharing/zones/"
parameters = {{ "path.slug" = "{zone}" }}
"""


@pytest.mark.slow
def test_api_is_fuzz_clean(pumasi_server, tmp_path: Path):
    world = seed_world()
    fuzzer = UserFactory(display_name="Fuzzer")
    for community in (world.doksan, world.maker):
        Membership.objects.create(community=community, user=fuzzer, role=Role.ORGANISER)
    _token, secret = create_api_token(user=fuzzer, name="fuzz", scopes=list(TOKEN_SCOPES))
    (tmp_path / "schemathesis.toml").write_text(_config(world))
    server = pumasi_server({"PUMASI_API_RATE_LIMIT": "1000000"})
    report = tmp_path / "events.ndjson"
    result = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", f"{server.url}/api/v1/openapi.json",
         "-H", f"Authorization: Bearer {secret}", "--checks", "not_a_server_error,response_schema_conformance",
         "--phases", "examples,coverage,fuzzing", "--max-time", str(FUZZ_SECONDS), "--max-examples", "20",
         "--exclude-operation-id", "pumasi_platform_api_revoke_token",
         "--request-timeout", "20", "--seed", "1", "--no-color", "--workers", "1",
         "--report", "ndjson", "--report-ndjson-path", str(report), "--suppress-health-check", "all"],
        capture_output=True, text=True, timeout=FUZZ_SECONDS + 150, cwd=tmp_path,  # its cache stays out of the repo
    )
    output = result.stdout + result.stderr
    failures = output[output.find("FAILURES"):][:8000] if "FAILURES" in output else output[-8000:]
    errors = [line for line in server.output().splitlines() if "ERROR" in line or "Error" in line]
    assert result.returncode == 0, failures + "\n--- server errors ---\n" + "\n".join(errors[-40:])
    assert "Fuzzing" in output and "Configuration:" in output, output[-3000:]
    # every operation of the document but the one left out was tested
    total = sum(len([m for m in item if m in METHODS]) for item in httpx.get(f"{server.url}/api/v1/openapi.json").json()["paths"].values())
    tested = re.search(r"Tested:\s+(\d+)", output)
    assert tested and int(tested.group(1)) == total - 1, output[-3000:]
    lines = [json.loads(line) for line in report.read_text().splitlines() if line.strip()]
    assert len(lines) > 100, "the run exercised too little of the API"
    assert "Traceback" not in server.output()
