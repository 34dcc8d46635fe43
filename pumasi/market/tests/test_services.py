"""The shop's write path: prices within the floor, orders and stock, payment into escrow or
income, shipping, reviews, cancellations and refunds that reverse money and stock exactly,
the low-stock latch and the end of a sale."""

from __future__ import annotations

import pytest
from django.core import mail

from pumasi.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from pumasi.ledger.models import AccountBalance, Transaction
from pumasi.market import permissions, services
from pumasi.market.models import Order, Product, StockMovement, Variant
from pumasi.platform.models import AuditEntry, Event, ScopedGrant

pytestmark = pytest.mark.django_db

ADDRESS = "12 Siheung-daero, Seoul"


def balance(community, code):
    row = AccountBalance.objects.filter(account__community=community, account__code=code).first()
    return row.balance if row else 0


def messages_to(user, name=None):
    events = Event.objects.filter(recipient=user)
    if name:
        events = events.filter(name=name)
    return list(events.order_by("pk"))


def order(shop, qty=1, size="M", buyer=None, **extra):
    return services.place_order(actor=buyer or shop.buyer, product=shop.product,
                                lines=[{"variant_id": shop.variants[size].pk, "quantity": qty}],
                                shipping_address=ADDRESS, **extra)


def test_designer_sets_price_within_floor_and_bad_price_changes_nothing(shop):
    with pytest.raises(InvalidInput) as info:
        services.set_price_and_terms(actor=shop.designer, product=shop.product, price=14999)
    assert "price" in info.value.field_errors
    shop.product.refresh_from_db()
    assert shop.product.price == 20000
    with pytest.raises(InvalidInput) as info:
        services.set_costs(actor=shop.organiser, product=shop.product, unit_cost=9000, floor_price=8000)
    assert "floor_price" in info.value.field_errors


def test_floor_must_cover_cost_also_in_the_database(shop):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Product.objects.filter(pk=shop.product.pk).update(floor_price=100)


def test_member_order_takes_stock_and_money_lands_in_escrow_then_splits_on_delivery(shop):
    placed = order(shop, qty=2)
    assert placed.status == Order.Status.PENDING and placed.total == 40000
    assert Variant.objects.get(pk=shop.variants["M"].pk).stock == 8
    assert messages_to(shop.designer, "market.order_placed")
    services.confirm_payment(actor=shop.organiser, order=placed, amount_received=40000)
    assert balance(shop.community, "shop:escrow") == -40000
    assert balance(shop.community, "cash") == 40000
    assert balance(shop.community, f"member:{shop.designer.pk}") == 0
    services.ship_order(actor=shop.organiser, order=placed, carrier="CJ Logistics", tracking_number="CJ-1234567")
    services.add_shipping_event(actor=shop.organiser, order=placed, kind="in_transit", location="Gunpo hub")
    services.add_shipping_event(actor=shop.organiser, order=placed, kind="delivered", location="Seoul")
    placed.refresh_from_db()
    assert placed.status == Order.Status.DELIVERED
    assert balance(shop.community, "shop:escrow") == 0
    # per unit 20000: cost 8000, of the 12000 left royalty 20 % = 2400, fund 10 % = 1200, margin 8400
    assert balance(shop.community, f"member:{shop.designer.pk}") == -4800
    assert balance(shop.community, "shop:production") == -16000
    assert balance(shop.community, "shop:fund") == -2400
    assert balance(shop.community, "shop:margin") == -16800
    kinds = [e.payload["kind"] for e in messages_to(shop.designer, "market.shipping")]
    assert kinds == ["handed_over", "in_transit", "delivered"]
    assert [e.payload["kind"] for e in messages_to(shop.buyer, "market.shipping")] == kinds


def test_income_rule_books_revenue_at_payment(shop):
    services.update_shop_settings(actor=shop.organiser, community=shop.community, payment_destination="income")
    placed = order(shop, qty=1)
    services.confirm_payment(actor=shop.organiser, order=placed, amount_received=20000)
    assert balance(shop.community, "shop:sales") == 0  # landed in sales, then split at once
    assert balance(shop.community, f"member:{shop.designer.pk}") == -2400
    assert Transaction.objects.filter(community=shop.community, kind="split").count() == 1


def test_paying_twice_is_refused_and_changes_nothing(shop):
    placed = order(shop)
    services.confirm_payment(actor=shop.organiser, order=placed, amount_received=20000)
    count = Transaction.objects.count()
    with pytest.raises(Conflict) as info:
        services.confirm_payment(actor=shop.organiser, order=placed, amount_received=20000)
    assert info.value.code == "already_paid"
    assert Transaction.objects.count() == count


def test_wrong_amount_received_is_refused(shop):
    placed = order(shop)
    with pytest.raises(Conflict):
        services.confirm_payment(actor=shop.organiser, order=placed, amount_received=19000)
    placed.refresh_from_db()
    assert placed.status == Order.Status.PENDING and not Transaction.objects.filter(kind="sale").exists()


def test_only_organisers_confirm_payments(shop):
    placed = order(shop)
    with pytest.raises(PermissionDenied):
        services.confirm_payment(actor=shop.designer, order=placed, amount_received=20000)


@pytest.mark.parametrize("lines, field", [
    ([{"variant_id": 999999, "quantity": 1}], "lines.0.variant_id"),
    ([{"variant_id": "M", "quantity": 1}], "lines.0.variant_id"),
    ("VARIANT:0", "lines.0.quantity"),
    ("VARIANT:-2", "lines.0.quantity"),
    ("VARIANT:1000", "lines.0.quantity"),
    ([], "lines"),
])
def test_bad_lines_are_refused_per_field_and_write_nothing(shop, lines, field):
    if isinstance(lines, str):
        lines = [{"variant_id": shop.variants["M"].pk, "quantity": int(lines.split(":")[1])}]
    before = Order.objects.count(), StockMovement.objects.count()
    with pytest.raises(InvalidInput) as info:
        services.place_order(actor=shop.buyer, product=shop.product, lines=lines, shipping_address=ADDRESS)
    assert field in info.value.field_errors
    assert (Order.objects.count(), StockMovement.objects.count()) == before


def test_ordering_more_than_stock_is_refused(shop):
    with pytest.raises(Conflict) as info:
        order(shop, qty=11)
    assert info.value.code == "out_of_stock" and "M" in info.value.field_errors
    assert Variant.objects.get(pk=shop.variants["M"].pk).stock == 10
    assert not Order.objects.exists()


def test_variant_of_another_product_is_refused(shop, community):
    other = services.create_product(actor=shop.organiser, community=community, title="Other", designer=shop.designer,
                                    variants=["One"], unit_cost=1, floor_price=1)
    with pytest.raises(InvalidInput):
        services.place_order(actor=shop.buyer, product=shop.product, shipping_address=ADDRESS,
                             lines=[{"variant_id": other.variants.get().pk, "quantity": 1}])


def test_guest_orders_with_email_and_reads_by_token(shop, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        placed = services.place_order(actor=None, product=shop.product, guest_email="guest@example.org",
                                      guest_name="Guest", shipping_address=ADDRESS,
                                      lines=[{"variant_id": shop.variants["S"].pk, "quantity": 1}])
    assert placed.buyer is None and placed.guest_email == "guest@example.org"
    assert any("guest@example.org" in m.to for m in mail.outbox)
    assert permissions.may_see_order(None, placed, token=placed.access_token)
    assert not permissions.may_see_order(None, placed, token="wrong")
    with pytest.raises(InvalidInput) as info:
        services.place_order(actor=None, product=shop.product, guest_email="not-an-email", guest_name="",
                             lines=[{"variant_id": shop.variants["S"].pk, "quantity": 1}], shipping_address=ADDRESS)
    assert {"guest_email", "guest_name"} <= set(info.value.field_errors)


def test_guests_refused_when_the_shop_says_so(shop):
    services.update_shop_settings(actor=shop.organiser, community=shop.community, guest_orders=False)
    with pytest.raises(PermissionDenied):
        services.place_order(actor=None, product=shop.product, guest_email="g@example.org", guest_name="G",
                             lines=[{"variant_id": shop.variants["S"].pk, "quantity": 1}], shipping_address=ADDRESS)


def test_idempotent_order(shop):
    first = order(shop, qty=2, idempotency_key="k-1")
    again = order(shop, qty=2, idempotency_key="k-1")
    assert first.pk == again.pk
    assert Variant.objects.get(pk=shop.variants["M"].pk).stock == 8
    with pytest.raises(Conflict):
        order(shop, qty=3, idempotency_key="k-1")


def test_cancel_before_payment_returns_stock(shop):
    placed = order(shop, qty=4)
    services.cancel_order(actor=shop.buyer, order=placed)
    placed.refresh_from_db()
    assert placed.status == Order.Status.CANCELLED
    assert Variant.objects.get(pk=shop.variants["M"].pk).stock == 10
    with pytest.raises(Conflict):
        services.cancel_order(actor=shop.buyer, order=placed)
    stranger_order = order(shop)
    with pytest.raises(NotFound):
        services.cancel_order(actor=shop.designer, order=stranger_order)


def test_refund_reverses_money_and_stock_exactly(shop):
    placed = order(shop, qty=3)
    services.confirm_payment(actor=shop.organiser, order=placed, amount_received=60000)
    services.ship_order(actor=shop.organiser, order=placed, carrier="Post", tracking_number="KP-0001")
    services.add_shipping_event(actor=shop.organiser, order=placed, kind="delivered")
    codes = ["cash", "shop:escrow", "shop:production", "shop:fund", "shop:margin", f"member:{shop.designer.pk}"]
    assert balance(shop.community, "cash") == 60000
    services.refund_order(actor=shop.organiser, order=placed)
    assert {code: balance(shop.community, code) for code in codes} == dict.fromkeys(codes, 0)
    assert Variant.objects.get(pk=shop.variants["M"].pk).stock == 10
    assert Transaction.objects.filter(kind="reversal").count() == 2
    with pytest.raises(Conflict):
        services.refund_order(actor=shop.organiser, order=placed)


def test_low_stock_alerts_once_per_crossing(shop):
    manager = shop.organiser
    for _ in range(4):  # 10 -> 6; then 5, 4, 3 (alert at 3), and 2 must not alert again
        order(shop, qty=1)
    order(shop, qty=3)  # 6 -> 3: crosses
    order(shop, qty=1)  # 3 -> 2: already below
    alerts = messages_to(shop.designer, "market.low_stock")
    assert len(alerts) == 1 and alerts[0].payload["stock"] == 3
    assert len(messages_to(manager, "market.low_stock")) == 1
    services.receive_stock(actor=shop.organiser, product=shop.product, quantities={shop.variants["M"].pk: 10})
    assert not Variant.objects.get(pk=shop.variants["M"].pk).low_alerted  # re-armed
    order(shop, qty=9)  # 12 -> 3: a second crossing
    assert len(messages_to(shop.designer, "market.low_stock")) == 2


def test_review_reaches_designer_once(shop):
    placed = order(shop)
    with pytest.raises(InvalidInput):
        services.add_review(actor=shop.buyer, order=placed, rating=5)  # not paid yet
    services.confirm_payment(actor=shop.organiser, order=placed, amount_received=20000)
    with pytest.raises(InvalidInput) as info:
        services.add_review(actor=shop.buyer, order=placed, rating=6)
    assert "rating" in info.value.field_errors
    services.add_review(actor=shop.buyer, order=placed, rating=4, text="Soft and well cut")
    [message] = messages_to(shop.designer, "market.review")
    assert "4/5" in message.payload["title"]
    with pytest.raises(Conflict):
        services.add_review(actor=shop.buyer, order=placed, rating=5)
    with pytest.raises(NotFound):
        services.add_review(actor=shop.designer, order=placed, rating=5)


def test_end_of_sale_closes_listing_and_withdraws_production_right(shop):
    assert permissions.has_production_right(shop.designer, shop.product)
    services.end_sale(actor=shop.organiser, product=shop.product)
    shop.product.refresh_from_db()
    assert shop.product.status == Product.Status.ENDED
    assert not permissions.has_production_right(shop.designer, shop.product)
    assert not ScopedGrant.objects.filter(user=shop.designer, revoked_at__isnull=True).exists()
    with pytest.raises(Conflict):
        order(shop)
    with pytest.raises(PermissionDenied):
        services.set_price_and_terms(actor=shop.designer, product=shop.product, price=30000)
    assert messages_to(shop.designer, "market.sale_ended")
    assert AuditEntry.objects.filter(action="market.sale_ended").exists()


def test_designer_without_right_cannot_act(shop, member_of):
    other = member_of(shop.community)
    with pytest.raises(PermissionDenied):
        services.set_price_and_terms(actor=other, product=shop.product, price=30000)


def test_peer_sale_with_two_of_three_escrow(shop, member_of):
    from pumasi.ledger import services as ledger

    with pytest.raises(Conflict):
        services.create_peer_listing(actor=shop.designer, community=shop.community, title="Old jacket", price=30000)
    services.update_shop_settings(actor=shop.organiser, community=shop.community, peer_trade=True)
    with pytest.raises(InvalidInput):
        services.create_peer_listing(actor=shop.designer, community=shop.community, title="", price=0)
    listing = services.create_peer_listing(actor=shop.designer, community=shop.community, title="Old jacket",
                                           price=30000)
    with pytest.raises(Conflict):
        services.buy_peer_listing(actor=shop.designer, listing=listing)
    bought = services.buy_peer_listing(actor=shop.buyer, listing=listing)
    assert bought.state == "held" and bought.escrow.moderator == shop.organiser
    assert balance(shop.community, bought.escrow.account.code) == -30000
    with pytest.raises(Conflict):
        services.buy_peer_listing(actor=member_of(shop.community), listing=listing)
    ledger.approve_escrow(actor=shop.buyer, escrow=bought.escrow, decision="release")
    ledger.approve_escrow(actor=shop.designer, escrow=bought.escrow, decision="release")
    bought.refresh_from_db()
    bought.escrow.refresh_from_db()
    assert bought.state == "released"
    assert balance(shop.community, bought.escrow.account.code) == 0
    assert messages_to(shop.designer, "market.peer_sold")
