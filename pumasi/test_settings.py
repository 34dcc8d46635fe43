"""Settings for the test suite: pumasi's settings with jobs run inline, mail kept in memory,
and a fast password hasher. Everything else (database, Redis) is as configured."""

import os

os.environ.setdefault("PUMASI_JOBS_IMMEDIATE", "1")
os.environ.setdefault("PUMASI_EMAIL_URL", "memory://")

from pumasi.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
PUMASI_API_RATE_LIMIT = int(os.environ.get("PUMASI_API_RATE_LIMIT", "100000"))

# Uploads made by tests go to a throwaway folder, not the demo's media.
import tempfile  # noqa: E402

MEDIA_ROOT = tempfile.mkdtemp(prefix="pumasi-test-media-")
