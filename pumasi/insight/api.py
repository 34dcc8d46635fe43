"""API of the insight capability: parse, authorize, call a service, serialize."""

from ninja import Router

router = Router(tags=["insight"])
