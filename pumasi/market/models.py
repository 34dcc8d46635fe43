"""Database models of the market: the community shop's products (listings) and their variants
with stock, orders by members or guests, payments, shipping events, reviews, low-stock latches,
production grants' bookkeeping and periodic reports.

Money is integer minor units in the community's currency. Stock lives on the variant and the
database refuses a negative count, so even a bug in the services cannot oversell.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

USER = settings.AUTH_USER_MODEL


class ShopSettings(models.Model):
    """The community's rules for its shop."""

    class Destination(models.TextChoices):
        ESCROW = "escrow", _("Held in escrow until the buyer has the goods")
        INCOME = "income", _("Booked as income at once")

    community = models.OneToOneField("communities.Community", on_delete=models.CASCADE, related_name="shop_settings")
    payment_destination = models.CharField(_("where paid money goes"), max_length=10, choices=Destination.choices,
                                           default=Destination.ESCROW)
    guest_orders = models.BooleanField(_("people without an account may order"), default=True)
    public_shop = models.BooleanField(_("anyone may see the shop"), default=True)
    bank_account = models.CharField(_("bank account for transfers"), max_length=200, blank=True)
    # Seed 001: members may sell to each other, the money held in 2-of-3 escrow (the ledger's).
    peer_trade = models.BooleanField(_("members may sell to each other (2-of-3 escrow)"), default=False)
    # The intermediary's share of each sale, in basis points; the ledger caps it per community.
    platform_share_bp = models.PositiveIntegerField(_("platform share (basis points)"), default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(payment_destination__in=["escrow", "income"]),
                                   name="market_settings_destination_valid"),
            models.CheckConstraint(condition=Q(platform_share_bp__lte=10000), name="market_settings_platform_bp_range"),
        ]

    def __str__(self) -> str:
        return f"shop settings of {self.community}"


class Product(models.Model):
    """A product of the community shop: made from a member's design, sold at the designer's price.

    draft (being produced) -> listed (on sale) -> ended (sale over, designer's access withdrawn).
    """

    class Status(models.TextChoices):
        DRAFT = "draft", _("In preparation")
        LISTED = "listed", _("On sale")
        ENDED = "ended", _("Sale ended")

    community = models.ForeignKey("communities.Community", on_delete=models.CASCADE, related_name="products")
    title = models.CharField(_("title"), max_length=140)
    description = models.TextField(_("description"), max_length=5000, blank=True)
    designer = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="designed_products")
    production_manager = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.DRAFT)
    currency = models.CharField(_("currency"), max_length=3, default="KRW")
    unit_cost = models.BigIntegerField(_("unit cost"), default=0)
    floor_price = models.BigIntegerField(_("lowest price"), default=0)
    price = models.BigIntegerField(_("price"), null=True, blank=True)
    terms = models.TextField(_("terms of sale"), max_length=3000, blank=True)
    # Shares of each sale, fixed when the design was selected (the call's royalty terms).
    royalty_bp = models.PositiveIntegerField(_("designer royalty (basis points)"), default=1000)
    community_fund_bp = models.PositiveIntegerField(_("community fund (basis points)"), default=0)
    low_stock_threshold = models.PositiveIntegerField(_("low-stock threshold"), default=5)
    image = models.ImageField(upload_to="market/products/%Y/%m/", blank=True)
    # The production right granted to the designer (pumasi.platform ScopedGrant).
    grant = models.ForeignKey("platform.ScopedGrant", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The ledger rule that divides each unit's price: production cost, royalty, fund, platform.
    split_rule = models.ForeignKey("ledger.SplitRule", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # Where the product came from (a cocreation Design), for the shop page's story.
    design_ref = models.PositiveBigIntegerField(null=True, blank=True)
    created_by = models.ForeignKey(USER, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    listed_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["community", "status", "-id"])]
        constraints = [
            models.CheckConstraint(condition=~Q(title=""), name="market_product_title_not_empty"),
            models.CheckConstraint(condition=Q(status__in=["draft", "listed", "ended"]), name="market_product_status_valid"),
            models.CheckConstraint(condition=Q(unit_cost__gte=0), name="market_product_cost_not_negative"),
            models.CheckConstraint(condition=Q(floor_price__gte=F("unit_cost")), name="market_product_floor_covers_cost"),
            models.CheckConstraint(condition=Q(price__isnull=True) | Q(price__gte=F("floor_price")),
                                   name="market_product_price_at_least_floor"),
            models.CheckConstraint(condition=~Q(status="listed") | Q(price__isnull=False),
                                   name="market_product_listed_has_price"),
            models.CheckConstraint(condition=Q(royalty_bp__lte=10000) & Q(community_fund_bp__lte=10000),
                                   name="market_product_bp_range"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def grant_scope(self) -> str:
        return f"production:product:{self.pk}"


class Variant(models.Model):
    """One size/colour of a product, with the units on hand."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="variants")
    label = models.CharField(_("variant"), max_length=80)
    sku = models.CharField(_("SKU"), max_length=60, blank=True)
    stock = models.IntegerField(_("in stock"), default=0)
    sold = models.PositiveIntegerField(default=0)
    # The low-stock latch: set when stock fell to the threshold and the alert went out; cleared
    # when stock rises above it again. One alert per crossing, whatever the number of orders.
    low_alerted = models.BooleanField(default=False)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(fields=["product", "label"], name="market_variant_label_once"),
            models.CheckConstraint(condition=Q(stock__gte=0), name="market_variant_stock_not_negative"),
            models.CheckConstraint(condition=~Q(label=""), name="market_variant_label_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.product} – {self.label}"


class StockMovement(models.Model):
    """Every change of a variant's stock, with why: the stock report reads these."""

    class Reason(models.TextChoices):
        PRODUCED = "produced", _("Produced")
        SOLD = "sold", _("Ordered")
        RETURNED = "returned", _("Returned (cancellation or refund)")
        ADJUSTED = "adjusted", _("Counted and corrected")

    variant = models.ForeignKey(Variant, on_delete=models.CASCADE, related_name="movements")
    change = models.IntegerField()
    stock_after = models.IntegerField()
    reason = models.CharField(max_length=10, choices=Reason.choices)
    order = models.ForeignKey("Order", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    note = models.CharField(max_length=200, blank=True)
    actor = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(change=0), name="market_movement_not_zero"),
            models.CheckConstraint(condition=Q(stock_after__gte=0), name="market_movement_after_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.variant_id}: {self.change:+d} ({self.reason})"


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for payment")
        PAID = "paid", _("Paid")
        SHIPPED = "shipped", _("Shipped")
        DELIVERED = "delivered", _("Delivered")
        CANCELLED = "cancelled", _("Cancelled")
        REFUNDED = "refunded", _("Refunded")

    community = models.ForeignKey("communities.Community", on_delete=models.CASCADE, related_name="orders")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="orders")
    number = models.CharField(max_length=20, unique=True)
    buyer = models.ForeignKey(USER, null=True, blank=True, on_delete=models.PROTECT, related_name="market_orders")
    guest_email = models.EmailField(_("e-mail"), blank=True)
    guest_name = models.CharField(_("name"), max_length=100, blank=True)
    # A guest reads their order with this secret link; members use their account.
    access_token = models.CharField(max_length=64, unique=True)
    shipping_address = models.TextField(_("shipping address"), max_length=500)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    currency = models.CharField(max_length=3)
    total = models.BigIntegerField()
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    carrier = models.CharField(_("carrier"), max_length=60, blank=True)
    tracking_number = models.CharField(_("tracking number"), max_length=60, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    shipped_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["community", "-id"]), models.Index(fields=["product", "status"])]
        constraints = [
            models.CheckConstraint(condition=Q(buyer__isnull=False) | ~Q(guest_email=""), name="market_order_has_buyer"),
            models.CheckConstraint(condition=Q(total__gt=0), name="market_order_total_positive"),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "paid", "shipped", "delivered", "cancelled", "refunded"]),
                name="market_order_status_valid",
            ),
            models.CheckConstraint(condition=~Q(status="shipped") | ~Q(tracking_number=""),
                                   name="market_order_shipped_has_tracking"),
            models.UniqueConstraint(fields=["community", "idempotency_key"], condition=Q(idempotency_key__isnull=False),
                                    name="market_order_idempotency_once"),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def buyer_email(self) -> str:
        return self.buyer.email if self.buyer_id else self.guest_email


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    variant = models.ForeignKey(Variant, on_delete=models.PROTECT, related_name="order_lines")
    quantity = models.PositiveIntegerField()
    unit_price = models.BigIntegerField()
    amount = models.BigIntegerField()

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="market_line_quantity_positive"),
            models.CheckConstraint(condition=Q(unit_price__gt=0), name="market_line_price_positive"),
            models.CheckConstraint(condition=Q(amount=F("unit_price") * F("quantity")), name="market_line_amount_exact"),
            models.UniqueConstraint(fields=["order", "variant"], name="market_line_variant_once"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.variant_id}"


class Payment(models.Model):
    """One payment of one order through a provider. An order is paid at most once (database)."""

    class Status(models.TextChoices):
        AWAITING = "awaiting", _("Awaiting the transfer")
        CONFIRMED = "confirmed", _("Confirmed")
        REFUNDED = "refunded", _("Refunded")
        VOID = "void", _("Void (order cancelled before payment)")

    order = models.OneToOneField(Order, on_delete=models.CASCADE, related_name="payment")
    provider = models.CharField(max_length=30)
    reference = models.CharField(max_length=40, unique=True)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.AWAITING)
    destination = models.CharField(max_length=10, blank=True, help_text="escrow or income, fixed at confirmation")
    confirmed_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    confirmed_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)
    # Ledger transactions (ids in pumasi.ledger), kept to reverse exactly what was posted.
    payment_tx = models.BigIntegerField(null=True, blank=True)
    revenue_tx = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="market_payment_amount_positive"),
            models.CheckConstraint(condition=Q(status__in=["awaiting", "confirmed", "refunded", "void"]),
                                   name="market_payment_status_valid"),
            models.CheckConstraint(condition=Q(status="awaiting") | Q(status="void") | Q(payment_tx__isnull=False),
                                   name="market_payment_confirmed_has_tx"),
        ]

    def __str__(self) -> str:
        return f"{self.reference} ({self.status})"


class ShippingEvent(models.Model):
    """A step in the parcel's journey, from the organisers, the company's system or the carrier."""

    class Kind(models.TextChoices):
        HANDED_OVER = "handed_over", _("Handed to the carrier")
        IN_TRANSIT = "in_transit", _("In transit")
        OUT_FOR_DELIVERY = "out_for_delivery", _("Out for delivery")
        DELIVERED = "delivered", _("Delivered")
        EXCEPTION = "exception", _("Delivery problem")

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="shipping_events")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    location = models.CharField(max_length=120, blank=True)
    note = models.CharField(max_length=300, blank=True)
    source = models.CharField(max_length=10, default="ui")
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    actor = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["occurred_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["handed_over", "in_transit", "out_for_delivery", "delivered", "exception"]),
                name="market_shipping_kind_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.kind}"


class Review(models.Model):
    """A buyer's rating and words on a product they bought; it reaches the designer."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="reviews")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="reviews")
    author = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    author_name = models.CharField(max_length=100)
    rating = models.PositiveSmallIntegerField(_("rating"))
    text = models.TextField(_("review"), max_length=2000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-pk"]
        constraints = [
            models.UniqueConstraint(fields=["order"], name="market_review_once_per_order"),
            models.CheckConstraint(condition=Q(rating__gte=1, rating__lte=5), name="market_review_rating_range"),
        ]

    def __str__(self) -> str:
        return f"{self.rating}/5 by {self.author_name}"


class ReportRun(models.Model):
    """A sales and stock report sent to a designer for one period; never sent twice."""

    class Period(models.TextChoices):
        DAILY = "daily", _("Daily")
        WEEKLY = "weekly", _("Weekly")
        MONTHLY = "monthly", _("Monthly")

    community = models.ForeignKey("communities.Community", on_delete=models.CASCADE, related_name="+")
    designer = models.ForeignKey(USER, on_delete=models.CASCADE, related_name="+")
    period = models.CharField(max_length=10, choices=Period.choices)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    content = models.JSONField(default=dict)
    emailed = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["community", "designer", "period", "period_start"], name="market_report_once"),
            models.CheckConstraint(condition=Q(period__in=["daily", "weekly", "monthly"]), name="market_report_period_valid"),
            models.CheckConstraint(condition=Q(period_end__gt=F("period_start")), name="market_report_period_order"),
        ]

    def __str__(self) -> str:
        return f"{self.period} report {self.period_start:%Y-%m-%d}"


class PeerListing(models.Model):
    """A member's own item sold to another member; the payment is held in the ledger's 2-of-3
    escrow (buyer, seller, a committee moderator) until two of them release or refund it."""

    community = models.ForeignKey("communities.Community", on_delete=models.CASCADE, related_name="peer_listings")
    seller = models.ForeignKey(USER, on_delete=models.CASCADE, related_name="peer_listings")
    title = models.CharField(_("title"), max_length=140)
    description = models.TextField(_("description"), max_length=3000, blank=True)
    price = models.BigIntegerField(_("price"))
    currency = models.CharField(max_length=3)
    buyer = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    escrow = models.OneToOneField("ledger.Escrow", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(title=""), name="market_peer_title_not_empty"),
            models.CheckConstraint(condition=Q(price__gt=0), name="market_peer_price_positive"),
            models.CheckConstraint(condition=Q(escrow__isnull=True) | Q(buyer__isnull=False), name="market_peer_escrow_has_buyer"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def state(self) -> str:
        """open, withdrawn, or the escrow's: held, released (sold), refunded."""
        if self.escrow_id:
            return self.escrow.status
        return "withdrawn" if self.withdrawn_at else "open"
