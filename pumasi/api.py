"""Mounts every capability's router on the one API at /api/v1."""

from __future__ import annotations

from importlib import import_module

from pumasi.core.api import api

CAPABILITIES = [
    "accounts", "communities", "platform", "ledger", "sharing", "cocreation", "market", "governance", "insight",
]

for _name in CAPABILITIES:
    api.add_router("/", import_module(f"pumasi.{_name}.api").router)

__all__ = ["api"]
