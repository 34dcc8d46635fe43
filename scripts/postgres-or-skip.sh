#!/usr/bin/env bash
# Exit 0 when PostgreSQL answers at the URL; 42 when it does not (so the run is skipped),
# except with CI=true, where an unreachable PostgreSQL is a failure, never a silent skip.
set -uo pipefail
url="$1"
if .venv/bin/python - "$url" <<'PY'
import sys
import psycopg
try:
    url = sys.argv[1].rsplit("/", 1)[0] + "/postgres"
    psycopg.connect(url, connect_timeout=3).close()
except Exception as exc:
    print(f"PostgreSQL at {sys.argv[1]}: {exc}", file=sys.stderr)
    sys.exit(1)
PY
then
  exit 0
fi
if [ "${CI:-}" = "true" ]; then
  echo "CI=true and PostgreSQL is not reachable: failing." >&2
  exit 1
fi
exit 42
