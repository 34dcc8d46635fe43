"""Reads of the shop: product lists, orders someone may see, and the designer's sales and stock
report for a period."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Count, Prefetch, Q, QuerySet, Sum

from pumasi.core.errors import NotFound
from pumasi.market import permissions
from pumasi.market.models import Order, OrderLine, Product, StockMovement, Variant


def shop_products(community, user=None) -> QuerySet[Product]:
    """What the shop shows: listed products; organisers also see those in preparation."""
    statuses = [Product.Status.LISTED]
    if permissions.is_organiser(user, community):
        statuses += [Product.Status.DRAFT, Product.Status.ENDED]
    return (Product.objects.filter(community=community, status__in=statuses)
            .select_related("designer", "community").prefetch_related(Prefetch("variants", queryset=Variant.objects.order_by("pk"))))


def product_for(user, community, product_id) -> Product:
    product = (Product.objects.select_related("community", "designer", "production_manager", "split_rule")
               .filter(community=community, pk=product_id).first())
    if product is None or not permissions.may_see_product(user, product):
        raise NotFound("No such product.")
    return product


def orders_for(user, community, *, product: Product | None = None) -> QuerySet[Order]:
    """Organisers see every order; the designer sees their product's while holding the right; a
    buyer their own."""
    orders = Order.objects.filter(community=community).select_related("product", "buyer")
    if product is not None:
        orders = orders.filter(product=product)
    if permissions.is_organiser(user, community):
        return orders
    if not getattr(user, "is_authenticated", False):
        return orders.none()
    designed = [p.pk for p in Product.objects.filter(community=community, designer=user)
                if permissions.has_production_right(user, p)]
    return orders.filter(Q(buyer=user) | Q(product_id__in=designed))


def order_for(user, community, number: str, token: str | None = None) -> Order:
    order = (Order.objects.select_related("product", "community", "buyer", "product__designer")
             .prefetch_related("lines__variant", "shipping_events").filter(community=community, number=number).first())
    if order is None or not permissions.may_see_order(user, order, token=token):
        raise NotFound("No such order.")
    return order


def order_by_token(token: str) -> Order:
    order = (Order.objects.select_related("product", "community", "product__designer")
             .prefetch_related("lines__variant", "shipping_events").filter(access_token=token).first())
    if order is None:
        raise NotFound("No such order.")
    return order


# --- reports -------------------------------------------------------------------------------------


def last_complete_period(kind: str, now: datetime, time_zone: str) -> tuple[datetime, datetime]:
    """The most recent whole day, ISO week (Mon–Sun) or calendar month before `now`, in local time."""
    zone = ZoneInfo(time_zone)
    today = now.astimezone(zone).date()
    if kind == "daily":
        start, end = today - timedelta(days=1), today
    elif kind == "weekly":
        end = today - timedelta(days=today.weekday())
        start = end - timedelta(days=7)
    elif kind == "monthly":
        end = today.replace(day=1)
        start = (end - timedelta(days=1)).replace(day=1)
    else:
        raise ValueError(kind)
    return _local_midnight(start, zone), _local_midnight(end, zone)


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone)


def sales_and_stock(*, community, designer, start: datetime, end: datetime) -> dict:
    """Per product of this designer: orders paid, units and revenue in the period, refunds,
    and stock per variant now with units sold in the period."""
    products = list(Product.objects.filter(community=community, designer=designer, listed_at__isnull=False)
                    .exclude(ended_at__lt=start).order_by("pk"))
    report = {"start": start.isoformat(), "end": end.isoformat(), "currency": community.currency, "products": []}
    for product in products:
        paid = OrderLine.objects.filter(order__product=product, order__paid_at__gte=start, order__paid_at__lt=end)
        totals = paid.aggregate(units=Sum("quantity"), revenue=Sum("amount"), orders=Count("order", distinct=True))
        refunded = Order.objects.filter(product=product, refunded_at__gte=start, refunded_at__lt=end).aggregate(
            n=Count("pk"), amount=Sum("total"))
        moved = {row["variant_id"]: row for row in StockMovement.objects.filter(
            variant__product=product, created_at__gte=start, created_at__lt=end).values("variant_id").annotate(
            sold=Sum("change", filter=Q(reason="sold")), produced=Sum("change", filter=Q(reason="produced")))}
        variants = [{"label": v.label, "stock": v.stock, "low": v.stock <= product.low_stock_threshold,
                     "sold_in_period": -(moved.get(v.pk, {}).get("sold") or 0),
                     "produced_in_period": moved.get(v.pk, {}).get("produced") or 0}
                    for v in product.variants.order_by("pk")]
        report["products"].append({
            "id": product.pk, "title": product.title, "status": product.status, "price": product.price,
            "orders": totals["orders"] or 0, "units": totals["units"] or 0, "revenue": totals["revenue"] or 0,
            "refunds": refunded["n"] or 0, "refunded_amount": refunded["amount"] or 0, "variants": variants,
        })
    report["units"] = sum(p["units"] for p in report["products"])
    report["revenue"] = sum(p["revenue"] for p in report["products"])
    report["royalty"] = royalty_earned(community=community, designer=designer, start=start, end=end)
    return report


def royalty_earned(*, community, designer, start: datetime, end: datetime) -> int:
    """What the designer earned in the period according to the ledger (payouts left out)."""
    from pumasi.ledger.models import Posting

    total = (Posting.objects.filter(account__community=community, account__owner_kind="member",
                                    account__owner_user=designer, transaction__created_at__gte=start,
                                    transaction__created_at__lt=end)
             .exclude(transaction__kind="payout").aggregate(s=Sum("amount"))["s"])
    return -(total or 0)


def statements_of(user, community):
    """The designer's own statements, newest first, with each sale line."""
    from pumasi.ledger.models import Statement

    return (Statement.objects.filter(settlement__community=community, member=user)
            .select_related("settlement").prefetch_related("lines").order_by("-settlement__period_start", "-pk"))
