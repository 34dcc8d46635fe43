"""API of the cocreation capability: parse, authorize, call a service, serialize."""

from ninja import Router

router = Router(tags=["cocreation"])
