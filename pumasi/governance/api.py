"""API of the governance capability: parse, authorize, call a service, serialize."""

from ninja import Router

router = Router(tags=["governance"])
