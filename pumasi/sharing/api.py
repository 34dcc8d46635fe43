"""API of the sharing capability: parse, authorize, call a service, serialize."""

from ninja import Router

router = Router(tags=["sharing"])
