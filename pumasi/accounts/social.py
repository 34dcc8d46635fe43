"""Social login configuration from the environment: which providers show a "sign in with" button.

Read by settings, so no Django models here. A provider appears only when its client id and
secret are set; with none set, allauth.socialaccount stays installed and shows no buttons.
"""

from __future__ import annotations

import json
import os

from django.core.exceptions import ImproperlyConfigured

# provider id -> (env prefix, scopes asked for)
BUILTIN = {
    "kakao": ("PUMASI_KAKAO", ["profile_nickname", "account_email"]),
    "naver": ("PUMASI_NAVER", []),
    "google": ("PUMASI_GOOGLE", ["openid", "profile", "email"]),
    "github": ("PUMASI_GITHUB", ["read:user", "user:email"]),
}


def providers_from_env(environ=None) -> dict:
    env = os.environ if environ is None else environ
    providers: dict = {}
    for provider, (prefix, scopes) in BUILTIN.items():
        client_id = (env.get(f"{prefix}_CLIENT_ID") or "").strip()
        secret = (env.get(f"{prefix}_SECRET") or "").strip()
        if client_id and secret:
            providers[provider] = {"APPS": [{"client_id": client_id, "secret": secret, "key": ""}], "SCOPE": scopes}
        elif client_id or secret:
            raise ImproperlyConfigured(f"Set both {prefix}_CLIENT_ID and {prefix}_SECRET, or neither.")
    raw = (env.get("PUMASI_OIDC_PROVIDERS") or "").strip()
    if raw:
        try:
            entries = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ImproperlyConfigured(f"PUMASI_OIDC_PROVIDERS is not valid JSON: {exc}") from exc
        if not isinstance(entries, list):
            raise ImproperlyConfigured("PUMASI_OIDC_PROVIDERS must be a JSON list of providers.")
        apps = []
        for index, entry in enumerate(entries):
            missing = [k for k in ("id", "name", "server_url", "client_id", "secret") if not (isinstance(entry, dict) and entry.get(k))]
            if missing:
                raise ImproperlyConfigured(f"PUMASI_OIDC_PROVIDERS[{index}] lacks: {', '.join(missing)}.")
            apps.append({
                "provider_id": entry["id"], "name": entry["name"], "client_id": entry["client_id"],
                "secret": entry["secret"], "settings": {"server_url": entry["server_url"]},
            })
        providers["openid_connect"] = {"APPS": apps}
    return providers
