"""Stock is never oversold: many buyers at once against a few units, on SQLite and PostgreSQL,
each in its own thread with its own database connection; and a held lock answers Busy."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections, transaction

from pumasi.core.errors import Busy, Conflict
from pumasi.market import services
from pumasi.market.models import Order, Product, StockMovement, Variant
from pumasi.tests.factories import MembershipFactory, UserFactory


def _shop(units: int):
    organiser = UserFactory()
    from pumasi.tests.factories import CommunityFactory

    community = CommunityFactory()
    MembershipFactory(community=community, user=organiser, role="organiser")
    designer = UserFactory()
    MembershipFactory(community=community, user=designer, role="member")
    product = services.create_product(actor=organiser, community=community, title="Rare tee", designer=designer,
                                      variants=["One size"], unit_cost=5000, floor_price=10000, low_stock_threshold=2)
    variant = product.variants.get()
    services.receive_stock(actor=organiser, product=product, quantities={variant.pk: units})
    product = services.list_product(actor=organiser, product=product)
    buyers = []
    for _ in range(20):
        buyer = UserFactory()
        MembershipFactory(community=community, user=buyer, role="member")
        buyers.append(buyer)
    return product, variant, buyers


@pytest.mark.django_db(transaction=True)
def test_hundred_parallel_orders_for_ten_units_sell_exactly_ten():
    product, variant, buyers = _shop(units=10)
    outcomes: list[str] = []
    lock = threading.Lock()

    def buy(index: int) -> None:
        try:
            services.place_order(actor=buyers[index % len(buyers)], product=Product.objects.get(pk=product.pk),
                                 lines=[{"variant_id": variant.pk, "quantity": 1}],
                                 shipping_address="1 Test street, Seoul")
            result = "sold"
        except Conflict:
            result = "refused"
        except Busy:
            result = "busy"
        finally:
            connections.close_all()
        with lock:
            outcomes.append(result)

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(buy, range(100)))
    assert len(outcomes) == 100
    assert outcomes.count("sold") == 10
    assert Variant.objects.get(pk=variant.pk).stock == 0
    assert Order.objects.filter(product=product).count() == 10
    assert sum(-m.change for m in StockMovement.objects.filter(variant=variant, reason="sold")) == 10
    # one low-stock alert for the one crossing, however many orders raced past it
    from pumasi.platform.models import Event

    assert Event.objects.filter(name="market.low_stock", recipient=product.designer).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_lock_held_too_long_answers_busy(monkeypatch):
    """Another writer holds the product (PostgreSQL: its row lock; SQLite: the write lock)."""
    # Short waits so the test is quick: PostgreSQL's lock_timeout, SQLite's busy timeout.
    monkeypatch.setattr(services, "LOCK_TIMEOUT", "200ms")
    product, variant, buyers = _shop(units=5)
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        connection.connection.execute("PRAGMA busy_timeout = 200")
    holding = threading.Event()
    release = threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                Product.objects.select_for_update().get(pk=product.pk)
                holding.set()
                release.wait(10)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        with pytest.raises(Busy) as info:
            services.place_order(actor=buyers[0], product=product, lines=[{"variant_id": variant.pk, "quantity": 1}],
                                 shipping_address="1 Test street, Seoul")
        assert info.value.status == 503
    finally:
        release.set()
        holder.join()
    assert Variant.objects.get(pk=variant.pk).stock == 5
