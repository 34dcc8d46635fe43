"""API of the market capability: parse, authorize, call a service, serialize."""

from ninja import Router

router = Router(tags=["market"])
