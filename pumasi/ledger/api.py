"""API of the ledger capability: parse, authorize, call a service, serialize."""

from ninja import Router

router = Router(tags=["ledger"])
