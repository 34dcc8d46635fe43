"""The shop's demo: every state of scenario 2 present, designer1 paid for a settled month and
mid-way through a re-production, and a second run adds nothing."""

from __future__ import annotations

import pytest

from pumasi.cocreation.models import Design, DesignScore, ProductionOrder
from pumasi.communities import demo as community_demo
from pumasi.ledger.models import Statement
from pumasi.market import demo
from pumasi.market.models import Order, Product
from pumasi.platform.models import Event

pytestmark = pytest.mark.django_db


def test_demo_seed_is_complete_and_idempotent():
    world = community_demo.seed()
    demo.seed(world)
    counts = (Order.objects.count(), Design.objects.count(), DesignScore.objects.count(), ProductionOrder.objects.count())
    demo.seed(world)
    assert (Order.objects.count(), Design.objects.count(), DesignScore.objects.count(),
            ProductionOrder.objects.count()) == counts
    product = Product.objects.get(community=world.maker, design_ref__isnull=False)
    assert product.status == "listed" and product.designer == world.people["designer1"]
    states = set(Order.objects.filter(product=product).values_list("status", flat=True))
    assert states == {"pending", "paid", "shipped", "delivered", "cancelled", "refunded"}
    assert Order.objects.filter(product=product, buyer__isnull=True).exists()  # a guest
    assert Event.objects.filter(name="market.low_stock", recipient=world.people["designer1"]).count() == 1
    statement = Statement.objects.get(member=world.people["designer1"])
    assert statement.paid > 0 and statement.paid == statement.earned
    assert ProductionOrder.objects.filter(product=product, status="in_production", plan__kind="reproduction").exists()
    assert ProductionOrder.objects.filter(product=product, status="stocked", plan__kind="first").exists()
