"""Fixtures of the market tests: a shop with a designer's listed product in stock."""

from __future__ import annotations

import pytest

from pumasi.market import services


@pytest.fixture
def shop(community, member_of):
    """A community shop with one listed product (sizes S, M, L; 10 of each), its designer, a buyer."""
    designer = member_of(community, display_name="Designer")
    buyer = member_of(community, display_name="Buyer")
    organiser = community.organiser
    product = services.create_product(
        actor=organiser, community=community, title="Hanok tee", designer=designer, variants=["S", "M", "L"],
        unit_cost=8000, floor_price=15000, royalty_bp=2000, community_fund_bp=1000, low_stock_threshold=3,
    )
    services.receive_stock(actor=organiser, product=product, quantities={v.pk: 10 for v in product.variants.all()})
    product = services.list_product(actor=organiser, product=product)
    product = services.set_price_and_terms(actor=designer, product=product, price=20000, terms="Made in Seoul")

    class Shop:
        pass

    shop = Shop()
    shop.community, shop.organiser, shop.designer, shop.buyer, shop.product = (
        community, organiser, designer, buyer, product)
    shop.variants = {v.label: v for v in product.variants.all()}
    return shop


# The shared browser rig (chromium, live server, signed-in contexts) for the browser walk of the 17 steps.
from pumasi.tests.browser.conftest import browser, new_context, site  # noqa: E402,F401
