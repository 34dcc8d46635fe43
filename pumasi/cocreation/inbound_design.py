"""Signed inbound event from the company's production system: a production order moved."""

from __future__ import annotations

from pumasi.cocreation import services_design as services
from pumasi.cocreation.models import ProductionOrder
from pumasi.core.errors import InvalidInput
from pumasi.platform.webhooks import register_inbound_handler


@register_inbound_handler("production.status")
def production_status(*, community, data: dict, message_id: str) -> dict:
    """{"production_order_id": 3, "status": "in_production", "note": "...", "external_ref": "ERP-77"}"""
    order_id = data.get("production_order_id")
    order = ProductionOrder.objects.filter(community=community, pk=order_id if isinstance(order_id, int) else None).first()
    if order is None:
        raise InvalidInput("No such production order.",
                           field_errors={"data.production_order_id": ["No such production order in this community."]})
    order = services.advance_production(actor=None, order=order, status=str(data.get("status", "")),
                                        note=str(data.get("note", ""))[:500],
                                        external_ref=str(data.get("external_ref", ""))[:80], trusted=True, source="system")
    return {"production_order_id": order.pk, "status": order.status}
