"""Reads pumasi's configuration from the environment (one place, documented in the README)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def var_dir() -> Path:
    path = Path(os.environ.get("PUMASI_VAR_DIR", BASE_DIR / "var"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def database_url() -> str:
    return os.environ.get("PUMASI_DATABASE_URL") or f"sqlite:///{var_dir() / 'pumasi.sqlite3'}"


def redis_url() -> str | None:
    return os.environ.get("PUMASI_REDIS_URL") or None


def mqtt_url() -> str | None:
    return os.environ.get("PUMASI_MQTT_URL") or None


def secret_key() -> str:
    """The configured key, else one generated on first start and kept under var/.

    Keeping it on disk means sessions and signed links survive a restart without the
    operator having to invent a key.
    """
    configured = os.environ.get("PUMASI_SECRET_KEY")
    if configured:
        return configured
    path = var_dir() / "secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


def allowed_hosts() -> list[str]:
    raw = os.environ.get("PUMASI_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
    return [host.strip() for host in raw.split(",") if host.strip()]


def email_url() -> str:
    return os.environ.get("PUMASI_EMAIL_URL", "console://")


def time_zone() -> str:
    return os.environ.get("PUMASI_TIME_ZONE", "Asia/Seoul")
