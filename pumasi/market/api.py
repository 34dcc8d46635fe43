"""API of the shop: parse, authorize, call a service, serialize.

Reading the shop and placing an order also work without an account (a guest with an e-mail
address) where the community allows it; everything else needs a session or a token with the
`market:write` scope for writes.
"""

from __future__ import annotations

from datetime import date, datetime

from django.contrib.auth.models import AnonymousUser
from ninja import Router, Schema, Status
from pydantic import Field

from pumasi.communities.models import Community
from pumasi.core.api import BrowserSessionAuth, TokenAuth, idempotent, require_scope
from pumasi.core.errors import NotFound
from pumasi.core.pagination import paginate
from pumasi.market import permissions, selectors, services
from pumasi.market.models import Order, ReportRun, Review

router = Router(tags=["market"])


def _anonymous(request):
    """Last in the chain: lets guests through as an anonymous visitor (the services decide)."""
    request.api_token = None
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        request.user = AnonymousUser()
    return True


OPTIONAL_AUTH = [TokenAuth(), BrowserSessionAuth(), _anonymous]


def _actor(request):
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None


def _community(request, slug: str) -> Community:
    community = Community.objects.filter(slug=slug).first()
    if community is None or not permissions.may_see_shop(_actor(request), community):
        raise NotFound("No such community.")
    return community


def _write(request) -> None:
    require_scope(request, "market:write")


class VariantOut(Schema):
    id: int
    label: str
    sku: str
    stock: int
    sold: int


class ProductOut(Schema):
    id: int
    title: str
    description: str
    status: str
    designer_id: int
    designer_name: str
    currency: str
    unit_cost: int
    floor_price: int
    price: int | None
    terms: str
    royalty_bp: int
    community_fund_bp: int
    low_stock_threshold: int
    listed_at: datetime | None
    ended_at: datetime | None
    share_url: str
    variants: list[VariantOut]

    @staticmethod
    def resolve_designer_name(obj) -> str:
        return obj.designer.name

    @staticmethod
    def resolve_share_url(obj) -> str:
        return f"/c/{obj.community.slug}/shop/{obj.pk}/"

    @staticmethod
    def resolve_variants(obj) -> list:
        return list(obj.variants.all())


class ProductPage(Schema):
    items: list[ProductOut]
    next_cursor: str | None


class ProductIn(Schema):
    title: str = Field(min_length=1, max_length=140)
    description: str = Field("", max_length=5000)
    designer_id: int
    variants: list[str] = Field(min_length=1, max_length=50)
    unit_cost: int = Field(ge=0)
    floor_price: int = Field(ge=1)
    royalty_bp: int = Field(1000, ge=1, le=10000)
    community_fund_bp: int = Field(0, ge=0, le=10000)
    low_stock_threshold: int = Field(5, ge=0, le=100000)
    production_manager_id: int | None = None


class CostsIn(Schema):
    unit_cost: int | None = Field(None, ge=0)
    floor_price: int | None = Field(None, ge=1)


class PriceIn(Schema):
    price: int = Field(ge=1)
    terms: str | None = Field(None, max_length=3000)


class StockIn(Schema):
    quantities: dict[str, int]
    note: str = Field("", max_length=200)
    reason: str = Field("produced", pattern="^(produced|adjusted)$")


class LineIn(Schema):
    variant_id: int
    quantity: int


class OrderIn(Schema):
    lines: list[LineIn] = Field(min_length=1, max_length=20)
    shipping_address: str = Field(min_length=1, max_length=500)
    guest_email: str = Field("", max_length=254)
    guest_name: str = Field("", max_length=100)
    payment_method: str = "bank_transfer"


class LineOut(Schema):
    variant_id: int
    label: str
    quantity: int
    unit_price: int
    amount: int

    @staticmethod
    def resolve_label(obj) -> str:
        return obj.variant.label


class ShippingEventOut(Schema):
    kind: str
    location: str
    note: str
    source: str
    occurred_at: datetime


class OrderOut(Schema):
    number: str
    product_id: int
    status: str
    currency: str
    total: int
    buyer_id: int | None
    guest_email: str
    carrier: str
    tracking_number: str
    created_at: datetime
    paid_at: datetime | None
    shipped_at: datetime | None
    delivered_at: datetime | None
    cancelled_at: datetime | None
    refunded_at: datetime | None
    payment_reference: str | None
    payment_instructions: str | None
    lines: list[LineOut]
    shipping_events: list[ShippingEventOut]

    @staticmethod
    def resolve_payment_reference(obj) -> str | None:
        payment = getattr(obj, "payment", None)
        return payment.reference if payment else None

    @staticmethod
    def resolve_payment_instructions(obj) -> str | None:
        from pumasi.market.payments import provider

        payment = getattr(obj, "payment", None)
        return provider(payment.provider).instructions(payment).text if payment else None

    @staticmethod
    def resolve_lines(obj) -> list:
        return list(obj.lines.select_related("variant"))

    @staticmethod
    def resolve_shipping_events(obj) -> list:
        return list(obj.shipping_events.all())


class OrderCreated(OrderOut):
    access_token: str


class OrderPage(Schema):
    items: list[OrderOut]
    next_cursor: str | None


class ConfirmIn(Schema):
    amount_received: int


class RefundIn(Schema):
    restock: bool = True
    reason: str = Field("", max_length=300)


class ShipIn(Schema):
    carrier: str = Field(min_length=1, max_length=60)
    tracking_number: str = Field(min_length=1, max_length=60)


class ShippingEventIn(Schema):
    kind: str
    location: str = Field("", max_length=120)
    note: str = Field("", max_length=300)
    occurred_at: datetime | None = None


class ReviewIn(Schema):
    rating: int
    text: str = Field("", max_length=2000)
    token: str | None = None


class ReviewOut(Schema):
    id: int
    rating: int
    text: str
    author_name: str
    created_at: datetime


class ReviewPage(Schema):
    items: list[ReviewOut]
    next_cursor: str | None


class ShopSettingsOut(Schema):
    payment_destination: str
    guest_orders: bool
    public_shop: bool
    bank_account: str
    platform_share_bp: int


class SettingsPatch(Schema):
    payment_destination: str | None = None
    guest_orders: bool | None = None
    public_shop: bool | None = None
    bank_account: str | None = Field(None, max_length=200)
    platform_share_bp: int | None = Field(None, ge=0, le=10000)


class ReportOut(Schema):
    id: int
    period: str
    period_start: datetime
    period_end: datetime
    content: dict


class ReportPage(Schema):
    items: list[ReportOut]
    next_cursor: str | None


# --- products ---------------------------------------------------------------------------------------


@router.get("/market/{slug}/products", response=ProductPage, auth=OPTIONAL_AUTH, summary="The shop's products")
def list_products(request, slug: str, cursor: str | None = None, limit: int = 50):
    community = _community(request, slug)
    return paginate(selectors.shop_products(community, _actor(request)), cursor=cursor, limit=limit)


@router.post("/market/{slug}/products", response={201: ProductOut}, summary="Create a product from a chosen design")
def create_product(request, slug: str, payload: ProductIn):
    _write(request)
    community = _community(request, slug)
    from django.contrib.auth import get_user_model

    users = get_user_model().objects
    data = payload.dict()
    designer = users.filter(pk=data.pop("designer_id"), memberships__community=community).first()
    manager_id = data.pop("production_manager_id")
    manager = users.filter(pk=manager_id).first() if manager_id else None
    return Status(201, services.create_product(actor=request.user, community=community, designer=designer,
                                               production_manager=manager, **data))


@router.get("/market/{slug}/products/{product_id}", response=ProductOut, auth=OPTIONAL_AUTH)
def get_product(request, slug: str, product_id: int):
    return selectors.product_for(_actor(request), _community(request, slug), product_id)


@router.patch("/market/{slug}/products/{product_id}/costs", response=ProductOut, summary="Unit cost and lowest price")
def set_costs(request, slug: str, product_id: int, payload: CostsIn):
    _write(request)
    product = selectors.product_for(request.user, _community(request, slug), product_id)
    return services.set_costs(actor=request.user, product=product, **payload.dict())


@router.patch("/market/{slug}/products/{product_id}/price", response=ProductOut,
              summary="The designer's price and terms (not under the lowest price)")
def set_price(request, slug: str, product_id: int, payload: PriceIn):
    _write(request)
    product = selectors.product_for(request.user, _community(request, slug), product_id)
    return services.set_price_and_terms(actor=request.user, product=product, price=payload.price, terms=payload.terms)


@router.post("/market/{slug}/products/{product_id}/list", response=ProductOut, summary="Put the product on sale")
def list_product(request, slug: str, product_id: int):
    _write(request)
    product = selectors.product_for(request.user, _community(request, slug), product_id)
    return services.list_product(actor=request.user, product=product)


@router.post("/market/{slug}/products/{product_id}/end", response=ProductOut,
             summary="End the sale and withdraw the designer's production right")
def end_sale(request, slug: str, product_id: int):
    _write(request)
    product = selectors.product_for(request.user, _community(request, slug), product_id)
    return services.end_sale(actor=request.user, product=product)


@router.post("/market/{slug}/products/{product_id}/stock", response=ProductOut, summary="Receive produced units")
def receive_stock(request, slug: str, product_id: int, payload: StockIn):
    _write(request)
    product = selectors.product_for(request.user, _community(request, slug), product_id)
    services.receive_stock(actor=request.user, product=product, quantities=payload.quantities, note=payload.note,
                           reason=payload.reason)
    return selectors.product_for(request.user, product.community, product.pk)


@router.get("/market/{slug}/products/{product_id}/reviews", response=ReviewPage, auth=OPTIONAL_AUTH)
def list_reviews(request, slug: str, product_id: int, cursor: str | None = None, limit: int = 50):
    product = selectors.product_for(_actor(request), _community(request, slug), product_id)
    return paginate(Review.objects.filter(product=product), cursor=cursor, limit=limit)


@router.get("/market/{slug}/products/{product_id}/sales", response=dict,
            summary="Sales and stock of this product (organisers, or the designer while holding the right)")
def product_sales(request, slug: str, product_id: int, start: datetime, end: datetime):
    product = selectors.product_for(request.user, _community(request, slug), product_id)
    permissions.require_designer_or_organiser(request.user, product)
    report = selectors.sales_and_stock(community=product.community, designer=product.designer, start=start, end=end)
    report["products"] = [p for p in report["products"] if p["id"] == product.pk]
    return report


# --- orders -----------------------------------------------------------------------------------------


@router.post("/market/{slug}/products/{product_id}/orders", response={201: OrderCreated}, auth=OPTIONAL_AUTH,
             summary="Order variants (members, or guests with an e-mail address); Idempotency-Key honoured")
@idempotent
def place_order(request, slug: str, product_id: int, payload: OrderIn):
    actor = _actor(request)
    if actor is not None:
        _write(request)
    community = _community(request, slug)
    product = selectors.product_for(actor, community, product_id)
    data = payload.dict()
    order = services.place_order(
        actor=actor, product=product, lines=data["lines"], shipping_address=data["shipping_address"],
        guest_email=data["guest_email"], guest_name=data["guest_name"], payment_method=data["payment_method"],
        idempotency_key=request.headers.get("Idempotency-Key"),
    )
    return Status(201, order)


@router.get("/market/{slug}/orders", response=OrderPage, summary="Orders I may see")
def list_orders(request, slug: str, product_id: int | None = None, status: str | None = None,
                cursor: str | None = None, limit: int = 50):
    community = _community(request, slug)
    product = selectors.product_for(request.user, community, product_id) if product_id else None
    orders = selectors.orders_for(request.user, community, product=product).prefetch_related(
        "lines__variant", "shipping_events").select_related("payment")
    if status:
        orders = orders.filter(status=status)
    return paginate(orders, cursor=cursor, limit=limit)


@router.get("/market/{slug}/orders/{number}", response=OrderOut, auth=OPTIONAL_AUTH)
def get_order(request, slug: str, number: str, token: str | None = None):
    return selectors.order_for(_actor(request), _community(request, slug), number, token=token)


def _order(request, slug: str, number: str, token: str | None = None) -> Order:
    return selectors.order_for(_actor(request), _community(request, slug), number, token=token)


@router.post("/market/{slug}/orders/{number}/confirm-payment", response=OrderOut,
             summary="Confirm a bank transfer arrived (organisers)")
@idempotent
def confirm_payment(request, slug: str, number: str, payload: ConfirmIn):
    _write(request)
    return services.confirm_payment(actor=request.user, order=_order(request, slug, number),
                                    amount_received=payload.amount_received)


@router.post("/market/{slug}/orders/{number}/cancel", response=OrderOut, auth=OPTIONAL_AUTH,
             summary="Cancel an unpaid order (buyer with account or order token, or organisers)")
def cancel_order(request, slug: str, number: str, token: str | None = None):
    if _actor(request) is not None:
        _write(request)
    order = _order(request, slug, number, token)
    return services.cancel_order(actor=_actor(request), order=order, token=token)


@router.post("/market/{slug}/orders/{number}/refund", response=OrderOut, summary="Refund a paid order (organisers)")
@idempotent
def refund_order(request, slug: str, number: str, payload: RefundIn):
    _write(request)
    return services.refund_order(actor=request.user, order=_order(request, slug, number), **payload.dict())


@router.post("/market/{slug}/orders/{number}/ship", response=OrderOut, summary="Hand to the carrier")
def ship_order(request, slug: str, number: str, payload: ShipIn):
    _write(request)
    return services.ship_order(actor=request.user, order=_order(request, slug, number), carrier=payload.carrier,
                               tracking_number=payload.tracking_number, source="api")


@router.post("/market/{slug}/orders/{number}/shipping-events", response={201: ShippingEventOut},
             summary="A step of the parcel's journey (organisers or the company's system)")
def shipping_event(request, slug: str, number: str, payload: ShippingEventIn):
    _write(request)
    return Status(201, services.add_shipping_event(actor=request.user, order=_order(request, slug, number),
                                                   source="api", **payload.dict()))


@router.post("/market/{slug}/orders/{number}/review", response={201: ReviewOut}, auth=OPTIONAL_AUTH,
             summary="The buyer's rating and review")
def review(request, slug: str, number: str, payload: ReviewIn):
    if _actor(request) is not None:
        _write(request)
    order = _order(request, slug, number, payload.token)
    return Status(201, services.add_review(actor=_actor(request), order=order, rating=payload.rating, text=payload.text,
                                           token=payload.token))


# --- settings and reports -----------------------------------------------------------------------------


@router.get("/market/{slug}/settings", response=ShopSettingsOut)
def get_settings(request, slug: str):
    community = _community(request, slug)
    permissions.require_organiser(request.user, community)
    return permissions.shop_settings(community)


@router.patch("/market/{slug}/settings", response=ShopSettingsOut)
def patch_settings(request, slug: str, payload: SettingsPatch):
    _write(request)
    community = _community(request, slug)
    return services.update_shop_settings(actor=request.user, community=community, **payload.dict(exclude_none=True))


@router.get("/market/{slug}/reports", response=ReportPage, summary="My sales and stock reports")
def my_reports(request, slug: str, cursor: str | None = None, limit: int = 50):
    community = _community(request, slug)
    return paginate(ReportRun.objects.filter(community=community, designer=request.user), cursor=cursor, limit=limit)


class StatementLineOut(Schema):
    posted_at: datetime
    memo: str
    amount: int


class DesignerStatementOut(Schema):
    id: int
    period_start: str
    period_end: str
    earned: int
    paid: int
    lines: list[StatementLineOut]

    @staticmethod
    def resolve_period_start(obj) -> str:
        return str(obj.settlement.period_start)

    @staticmethod
    def resolve_period_end(obj) -> str:
        return str(obj.settlement.period_end)

    @staticmethod
    def resolve_lines(obj) -> list:
        return list(obj.lines.all())


class StatementPage(Schema):
    items: list[DesignerStatementOut]
    next_cursor: str | None


class SettleIn(Schema):
    period_start: date
    period_end: date


class MarketSettlementOut(Schema):
    id: int
    status: str
    period_start: date
    period_end: date
    total_earned: int
    total_paid: int


@router.get("/market/{slug}/statements", response=StatementPage, summary="My statements: each sale and payout")
def my_statements(request, slug: str, cursor: str | None = None, limit: int = 50):
    community = _community(request, slug)
    return paginate(selectors.statements_of(request.user, community), cursor=cursor, limit=limit)


@router.post("/market/{slug}/settlements", response=MarketSettlementOut,
             summary="Settle a period through the ledger and tell each designer their figures")
@idempotent
def settle(request, slug: str, payload: SettleIn):
    _write(request)
    require_scope(request, "ledger:write")
    community = _community(request, slug)
    return services.settle_period(actor=request.user, community=community, period_start=payload.period_start,
                                  period_end=payload.period_end)

