"""Signed events from the company's own systems (ERP, warehouse, carrier integration) that drive
the same shop flows as the organisers' buttons: stock received, parcels handed over and moving.
The platform verifies the Standard Webhooks signature; the signature is the system's authority."""

from __future__ import annotations

from datetime import datetime

from pumasi.core.errors import InvalidInput
from pumasi.market import services
from pumasi.market.models import Order, Product
from pumasi.platform.webhooks import register_inbound_handler


@register_inbound_handler("market.shipping")
def shipping(*, community, data: dict, message_id: str) -> dict:
    """{"order": "12-AB12CD34", "kind": "handed_over"|"in_transit"|..., "carrier", "tracking_number",
    "location", "note", "occurred_at"}"""
    order = Order.objects.select_related("product", "community").filter(
        community=community, number=str(data.get("order", ""))).first()
    if order is None:
        raise InvalidInput("No such order.", field_errors={"data.order": ["No such order in this community."]})
    kind = data.get("kind")
    if kind == "handed_over":
        order = services.ship_order(actor=None, order=order, carrier=str(data.get("carrier", "")),
                                    tracking_number=str(data.get("tracking_number", "")), trusted=True, source="api")
        return {"order": order.number, "status": order.status}
    occurred_at = None
    if data.get("occurred_at"):
        try:
            occurred_at = datetime.fromisoformat(str(data["occurred_at"]))
        except ValueError as exc:
            raise InvalidInput("Bad time.", field_errors={"data.occurred_at": ["Use ISO 8601 with an offset."]}) from exc
        if occurred_at.tzinfo is None:
            raise InvalidInput("Bad time.", field_errors={"data.occurred_at": ["Use ISO 8601 with an offset."]})
    services.add_shipping_event(actor=None, order=order, kind=str(kind), location=str(data.get("location", "")),
                                note=str(data.get("note", "")), occurred_at=occurred_at, source="carrier", trusted=True)
    order.refresh_from_db()
    return {"order": order.number, "status": order.status}


@register_inbound_handler("market.stock")
def stock(*, community, data: dict, message_id: str) -> dict:
    """{"product_id": 12, "quantities": {"<variant id>": 30}, "note": "..."}"""
    product = Product.objects.select_related("community", "designer").filter(
        community=community, pk=data.get("product_id") if isinstance(data.get("product_id"), int) else None).first()
    if product is None:
        raise InvalidInput("No such product.", field_errors={"data.product_id": ["No such product in this community."]})
    quantities = data.get("quantities")
    if not isinstance(quantities, dict):
        raise InvalidInput("No quantities.", field_errors={"data.quantities": ["An object {variant id: quantity}."]})
    variants = services.receive_stock(actor=None, product=product, quantities=quantities,
                                      note=str(data.get("note", ""))[:200], trusted=True)
    return {"product_id": product.pk, "stock": {str(v.pk): v.stock for v in variants}}
