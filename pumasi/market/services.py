"""Write path of the shop: products and their prices, stock, orders, payments, shipping,
reviews, cancellations and refunds, low-stock alerts and the end of a sale.

Stock is never oversold: an order locks its product row and then its variant rows in primary-key
order (`select_for_update(of=("self",))`), so concurrent orders queue instead of racing; on
PostgreSQL a lock wait longer than LOCK_TIMEOUT answers `Busy` ("try again") rather than hanging,
and on SQLite the IMMEDIATE transaction mode serialises writers. The database's own check
(stock >= 0) backs this up.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from pumasi.communities.permissions import role_of
from pumasi.core.errors import Busy, Conflict, InvalidInput, NotFound, PermissionDenied
from pumasi.core.events import publish_event
from pumasi.market import accounting, payments, permissions
from pumasi.market.models import (
    Order,
    OrderLine,
    Payment,
    Product,
    Review,
    ShippingEvent,
    ShopSettings,
    StockMovement,
    Variant,
)
from pumasi.platform.services import record_audit

logger = logging.getLogger("pumasi.market")

LOCK_TIMEOUT = "3s"
MAX_QUANTITY = 100
MAX_LINES = 20
MAX_PRICE = 10**12


# --- helpers ------------------------------------------------------------------------------------


def _is_lock_failure(exc: OperationalError) -> bool:
    cause = exc.__cause__
    if getattr(cause, "sqlstate", None) in {"55P03", "40P01"}:  # lock_not_available, deadlock_detected
        return True
    text = str(exc).lower()
    return "lock timeout" in text or "database is locked" in text or "deadlock" in text


def locking(fn: Callable) -> Callable:
    """Turn a lock that could not be had in time into Busy (HTTP 503, 'try again')."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except OperationalError as exc:
            if _is_lock_failure(exc):
                raise Busy(_("The shop is busy; please try again in a moment.")) from exc
            raise

    return wrapper


def _bound_lock_wait() -> None:
    """Inside a transaction on PostgreSQL: wait at most LOCK_TIMEOUT for a row lock."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")


def _lock_product(product: Product) -> Product:
    _bound_lock_wait()
    return Product.objects.select_for_update(of=("self",)).select_related("community").get(pk=product.pk)


def _lock_order(order: Order) -> Order:
    _bound_lock_wait()
    return Order.objects.select_for_update(of=("self",)).select_related("community", "product").get(pk=order.pk)


def _int_field(value, field: str, errors: dict, *, minimum: int = 0, maximum: int = MAX_PRICE) -> int | None:
    try:
        number = int(value)
        if isinstance(value, float) and value != number:
            raise ValueError
    except (TypeError, ValueError):
        errors[field] = [_("Give a whole number.")]
        return None
    if number < minimum or number > maximum:
        errors[field] = [_("Give a number between %(min)s and %(max)s.") % {"min": minimum, "max": maximum}]
        return None
    return number


def tell(*, name: str, community, recipient, title: str, url: str = "", payload: dict | None = None) -> None:
    """A personal message: a personal event (the live stream, the API, webhooks) and an entry on the
    person's notifications page (mailed as they chose for this kind). Shared with the production flow."""
    from pumasi.platform import notifications

    event = publish_event(name=name, community=community, recipient=recipient,
                          payload={"title": title, "url": url, **(payload or {})})
    # The page shows at most 200 characters; the whole text stays in the event.
    notifications.notify(recipient=recipient, kind=name, title=title[:200], url=url, community=community, event=event)


def _notify(*, name: str, product: Product, recipients, title: str, payload: dict | None = None) -> None:
    """A personal message to each recipient (once each)."""
    seen: set[int] = set()
    for person in recipients:
        if person is None or person.pk in seen:
            continue
        seen.add(person.pk)
        tell(name=name, community=product.community, recipient=person, title=title,
             url=f"/c/{product.community.slug}/shop/{product.pk}/", payload={"product_id": product.pk, **(payload or {})})


def _production_people(product: Product) -> list:
    """Who hears about production and stock: the product's production manager, else the organisers."""
    if product.production_manager_id:
        return [product.production_manager]
    from django.contrib.auth import get_user_model

    return list(get_user_model().objects.filter(
        memberships__community=product.community, memberships__role="organiser").order_by("pk"))


def _mail_after_commit(subject: str, body: str, to: str) -> None:
    if not to:
        return

    def send() -> None:
        try:
            send_mail(subject, body, None, [to])
        except Exception:  # the change has committed; a mail server problem must not undo it
            logger.exception("could not mail %s", to)

    transaction.on_commit(send)


# --- shop settings -------------------------------------------------------------------------------


def update_shop_settings(*, actor, community, **fields) -> ShopSettings:
    permissions.require_organiser(actor, community)
    allowed = {"payment_destination", "guest_orders", "public_shop", "bank_account", "platform_share_bp", "peer_trade"}
    errors: dict[str, list[str]] = {}
    for key in set(fields) - allowed:
        errors[key] = [_("Cannot be changed here.")]
    if "payment_destination" in fields and fields["payment_destination"] not in ShopSettings.Destination.values:
        errors["payment_destination"] = [_("Choose escrow or income.")]
    if "platform_share_bp" in fields:
        value = _int_field(fields["platform_share_bp"], "platform_share_bp", errors, maximum=10000)
        if value is not None:
            cap = accounting.platform_cap_bp(community)
            if value > cap:
                errors["platform_share_bp"] = [_("The community caps the platform's share at %(cap)s basis points.") % {"cap": cap}]
    if "bank_account" in fields and len(str(fields["bank_account"])) > 200:
        errors["bank_account"] = [_("At most 200 characters.")]
    if errors:
        raise InvalidInput(_("The shop settings were not changed."), field_errors=errors)
    with transaction.atomic():
        found, _created = ShopSettings.objects.select_for_update().get_or_create(community=community)
        changes = {k: [getattr(found, k), v] for k, v in fields.items() if getattr(found, k) != v}
        for key, (_old, new) in changes.items():
            setattr(found, key, new)
        if changes:
            found.save()
            record_audit(actor=actor, action="market.settings_updated", obj=found, community=community, changes=changes)
    return found


# --- products ---------------------------------------------------------------------------------------


def create_product(
    *, actor, community, title: str, designer, variants: list[str], unit_cost: int, floor_price: int,
    royalty_bp: int = 1000, community_fund_bp: int = 0, description: str = "", low_stock_threshold: int = 5,
    production_manager=None, design_ref: int | None = None, grant_production: bool = True,
) -> Product:
    """An organiser creates a product from a chosen design and grants its designer the production
    right on it (scope `production:product:<id>`), nothing more."""
    permissions.require_organiser(actor, community)
    errors: dict[str, list[str]] = {}
    title = (title or "").strip()
    if not (1 <= len(title) <= 140):
        errors["title"] = [_("Give a title of 1 to 140 characters.")]
    if len(description or "") > 5000:
        errors["description"] = [_("At most 5000 characters.")]
    if designer is None or role_of(designer, community) is None:
        errors["designer"] = [_("The designer must be a member of the community.")]
    if production_manager is not None and not permissions.is_organiser(production_manager, community):
        errors["production_manager"] = [_("The production manager must be an organiser.")]
    labels = [str(v).strip() for v in (variants or [])]
    if not labels or any(not (1 <= len(v) <= 80) for v in labels) or len(set(labels)) != len(labels) or len(labels) > 50:
        errors["variants"] = [_("Give 1 to 50 distinct variants (e.g. sizes), each 1 to 80 characters.")]
    cost = _int_field(unit_cost, "unit_cost", errors)
    floor = _int_field(floor_price, "floor_price", errors, minimum=1)
    if cost is not None and floor is not None and floor < cost:
        errors["floor_price"] = [_("The lowest price must cover the unit cost (%(cost)s).") % {"cost": cost}]
    royalty = _int_field(royalty_bp, "royalty_bp", errors, minimum=1, maximum=10000)
    fund = _int_field(community_fund_bp, "community_fund_bp", errors, maximum=10000)
    if royalty is not None and fund is not None:
        platform_bp = permissions.shop_settings(community).platform_share_bp
        if royalty + fund + platform_bp > 10000:
            errors["royalty_bp"] = [_("Royalty, community fund and platform share together exceed 100 %.")]
    threshold = _int_field(low_stock_threshold, "low_stock_threshold", errors, maximum=100000)
    if errors:
        raise InvalidInput(_("The product was not created."), field_errors=errors)
    with transaction.atomic():
        product = Product.objects.create(
            community=community, title=title, description=(description or "").strip(), designer=designer,
            production_manager=production_manager, currency=community.currency, unit_cost=cost, floor_price=floor,
            royalty_bp=royalty, community_fund_bp=fund, low_stock_threshold=threshold, design_ref=design_ref,
            created_by=actor,
        )
        Variant.objects.bulk_create([Variant(product=product, label=label) for label in labels])
        if grant_production:
            from pumasi.platform.oidc import grant_scope

            product.grant = grant_scope(actor=actor, community=community, user=designer, scope=product.grant_scope,
                                        note=title[:200])
        product.split_rule = accounting.create_product_rule(
            actor=actor, product=product, platform_bp=permissions.shop_settings(community).platform_share_bp)
        product.save(update_fields=["grant", "split_rule"])
        record_audit(actor=actor, action="market.product_created", obj=product, community=community,
                     changes={"title": title, "designer": designer.pk, "variants": labels, "unit_cost": cost,
                              "floor_price": floor})
        _notify(name="market.product_created", product=product, recipients=[designer],
                title=_("Your design %(title)s goes into production; you may now plan it.") % {"title": title})
    return product


def set_costs(*, actor, product: Product, unit_cost: int | None = None, floor_price: int | None = None) -> Product:
    permissions.require_organiser(actor, product.community)
    errors: dict[str, list[str]] = {}
    cost = product.unit_cost if unit_cost is None else _int_field(unit_cost, "unit_cost", errors)
    floor = product.floor_price if floor_price is None else _int_field(floor_price, "floor_price", errors, minimum=1)
    if not errors and floor < cost:
        errors["floor_price"] = [_("The lowest price must cover the unit cost (%(cost)s).") % {"cost": cost}]
    if not errors and product.price is not None and product.price < floor:
        errors["floor_price"] = [_("The designer's price (%(price)s) is under this floor; agree a new price first.") % {
            "price": product.price}]
    if errors:
        raise InvalidInput(_("The costs were not changed."), field_errors=errors)
    with transaction.atomic():
        locked = _lock_product(product)
        if locked.status == Product.Status.ENDED:
            raise Conflict(_("The sale of this product has ended."), code="sale_ended")
        changes = {"unit_cost": [locked.unit_cost, cost], "floor_price": [locked.floor_price, floor]}
        locked.unit_cost, locked.floor_price = cost, floor
        locked.save(update_fields=["unit_cost", "floor_price"])
        if changes["unit_cost"][0] != cost:
            accounting.revise_product_rule(actor=actor, product=locked,
                                           platform_bp=permissions.shop_settings(locked.community).platform_share_bp)
        record_audit(actor=actor, action="market.costs_set", obj=locked, community=locked.community, changes=changes)
        _notify(name="market.costs_set", product=locked, recipients=[locked.designer],
                title=_("Unit cost of %(title)s is now %(cost)s; the lowest price is %(floor)s.") % {
                    "title": locked.title, "cost": cost, "floor": floor})
    return locked


def set_price_and_terms(*, actor, product: Product, price: int, terms: str | None = None) -> Product:
    """The designer sets the sale price (not under the organisers' floor) and the terms."""
    permissions.require_designer_or_organiser(actor, product)
    errors: dict[str, list[str]] = {}
    value = _int_field(price, "price", errors, minimum=1)
    if value is not None and value < product.floor_price:
        errors["price"] = [_("The price may not be under the lowest price of %(floor)s.") % {"floor": product.floor_price}]
    if terms is not None and len(terms) > 3000:
        errors["terms"] = [_("At most 3000 characters.")]
    if errors:
        raise InvalidInput(_("The price was not changed."), field_errors=errors)
    with transaction.atomic():
        locked = _lock_product(product)
        if locked.status == Product.Status.ENDED:
            raise Conflict(_("The sale of this product has ended."), code="sale_ended")
        if value < locked.floor_price:  # the floor may have moved since we read it
            raise InvalidInput(_("The price was not changed."), field_errors={"price": [
                _("The price may not be under the lowest price of %(floor)s.") % {"floor": locked.floor_price}]})
        changes = {"price": [locked.price, value]}
        locked.price = value
        if terms is not None:
            changes["terms"] = [locked.terms, terms.strip()]
            locked.terms = terms.strip()
        locked.save(update_fields=["price", "terms"])
        record_audit(actor=actor, action="market.price_set", obj=locked, community=locked.community, changes=changes)
        publish_event(name="market.price_set", community=locked.community,
                      payload={"product_id": locked.pk, "price": value})
    return locked


def list_product(*, actor, product: Product, trusted: bool = False) -> Product:
    """Production is done: the product goes on sale (at the floor until the designer sets a price).
    `trusted`: called by the production flow when a first run is stocked."""
    if not trusted:
        permissions.require_organiser(actor, product.community)
    with transaction.atomic():
        locked = _lock_product(product)
        if locked.status != Product.Status.DRAFT:
            raise Conflict(_("Only a product in preparation can be listed."), code="not_draft")
        locked.status = Product.Status.LISTED
        locked.listed_at = timezone.now()
        if locked.price is None:
            locked.price = locked.floor_price
        locked.save(update_fields=["status", "listed_at", "price"])
        record_audit(actor=actor, action="market.product_listed", obj=locked, community=locked.community,
                     changes={"price": locked.price})
        publish_event(name="market.product_listed", community=locked.community, payload={"product_id": locked.pk})
        _notify(name="market.product_listed", product=locked, recipients=[locked.designer],
                title=_("%(title)s is in the shop now; set your price and terms and share it.") % {"title": locked.title})
    return locked


@locking
def end_sale(*, actor, product: Product) -> Product:
    """The organisers end the sale: the listing closes and the designer's production right (with
    every token of theirs for the community's applications) is withdrawn in the same transaction."""
    permissions.require_organiser(actor, product.community)
    with transaction.atomic():
        locked = _lock_product(product)
        if locked.status == Product.Status.ENDED:
            raise Conflict(_("The sale of this product has already ended."), code="sale_ended")
        locked.status = Product.Status.ENDED
        locked.ended_at = timezone.now()
        locked.save(update_fields=["status", "ended_at"])
        from pumasi.platform.models import ScopedGrant
        from pumasi.platform.oidc import revoke_grant

        revoked = []
        for grant in ScopedGrant.objects.filter(community=locked.community, scope=locked.grant_scope,
                                                revoked_at__isnull=True).order_by("pk"):
            revoke_grant(actor=actor, community=locked.community, grant_id=grant.pk)
            revoked.append(grant.pk)
        record_audit(actor=actor, action="market.sale_ended", obj=locked, community=locked.community,
                     changes={"grants_revoked": revoked})
        publish_event(name="market.sale_ended", community=locked.community, payload={"product_id": locked.pk})
        _notify(name="market.sale_ended", product=locked, recipients=[locked.designer],
                title=_("The sale of %(title)s has ended; your production access is withdrawn. Thank you!") % {
                    "title": locked.title})
    return locked


# --- stock ------------------------------------------------------------------------------------------


def _check_low_stock(variant: Variant, product: Product) -> None:
    """The latch: alert once when stock falls to the threshold, re-arm when it rises above it.
    The variant row is locked by the caller, so two orders cannot both see 'not yet alerted'."""
    threshold = product.low_stock_threshold
    if variant.stock <= threshold and not variant.low_alerted:
        Variant.objects.filter(pk=variant.pk).update(low_alerted=True)
        variant.low_alerted = True
        record_audit(actor=None, action="market.low_stock", obj=variant, community=product.community,
                     changes={"stock": variant.stock, "threshold": threshold})
        _notify(name="market.low_stock", product=product, recipients=[product.designer, *_production_people(product)],
                title=_("Low stock: %(title)s – %(label)s has %(stock)s left (threshold %(threshold)s).") % {
                    "title": product.title, "label": variant.label, "stock": variant.stock, "threshold": threshold},
                payload={"variant_id": variant.pk, "stock": variant.stock})
    elif variant.stock > threshold and variant.low_alerted:
        Variant.objects.filter(pk=variant.pk).update(low_alerted=False)
        variant.low_alerted = False


def _move_stock(*, variant: Variant, product: Product, change: int, reason: str, order=None, actor=None,
                note: str = "") -> Variant:
    Variant.objects.filter(pk=variant.pk).update(
        stock=F("stock") + change, **({"sold": F("sold") - change} if reason in ("sold", "returned") else {}))
    variant.refresh_from_db(fields=["stock", "sold", "low_alerted"])
    StockMovement.objects.create(variant=variant, change=change, stock_after=variant.stock, reason=reason, order=order,
                                 actor=actor if getattr(actor, "is_authenticated", False) else None, note=note[:200])
    _check_low_stock(variant, product)
    return variant


@locking
def receive_stock(*, actor, product: Product, quantities: dict[int, int], note: str = "",
                  reason: str = StockMovement.Reason.PRODUCED, trusted: bool = False) -> list[Variant]:
    """Produced (or recounted) units arrive in stock: {variant_id: quantity}. `trusted` is for
    the company's own system, whose signed message is its authority."""
    if not trusted:
        permissions.require_organiser(actor, product.community)
    errors: dict[str, list[str]] = {}
    known = {v.pk: v for v in product.variants.all()}
    clean: dict[int, int] = {}
    for key, qty in (quantities or {}).items():
        try:
            variant_id = int(key)
        except (TypeError, ValueError):
            variant_id = None
        if variant_id not in known:
            errors[f"quantities.{key}"] = [_("No such variant of this product.")]
            continue
        number = _int_field(qty, f"quantities.{key}", errors, minimum=1, maximum=1_000_000)
        if number is not None:
            clean[variant_id] = number
    if not clean and not errors:
        errors["quantities"] = [_("Give at least one variant with a quantity above zero.")]
    if errors:
        raise InvalidInput(_("No stock was received."), field_errors=errors)
    with transaction.atomic():
        locked = _lock_product(product)
        if locked.status == Product.Status.ENDED:
            raise Conflict(_("The sale of this product has ended."), code="sale_ended")
        variants = list(Variant.objects.select_for_update(of=("self",)).filter(pk__in=clean).order_by("pk"))
        for variant in variants:
            _move_stock(variant=variant, product=locked, change=clean[variant.pk], reason=reason, actor=actor, note=note)
        record_audit(actor=actor, action="market.stock_received", obj=locked, community=locked.community,
                     changes={"quantities": {str(k): v for k, v in clean.items()}, "note": note})
        _notify(name="market.stock_received", product=locked, recipients=[locked.designer],
                title=_("%(n)s units of %(title)s arrived in stock.") % {"n": sum(clean.values()), "title": locked.title})
    return variants


# --- orders -----------------------------------------------------------------------------------------


def _clean_lines(product: Product, lines) -> tuple[dict[int, int], dict[str, list[str]]]:
    errors: dict[str, list[str]] = {}
    wanted: dict[int, int] = {}
    if not lines:
        return wanted, {"lines": [_("Choose at least one variant.")]}
    if len(lines) > MAX_LINES:
        return wanted, {"lines": [_("At most %(n)s lines per order.") % {"n": MAX_LINES}]}
    known = set(product.variants.values_list("pk", flat=True))
    for index, line in enumerate(lines):
        variant_id = line.get("variant_id") if isinstance(line, dict) else None
        try:
            variant_id = int(variant_id)
        except (TypeError, ValueError):
            variant_id = None
        if variant_id not in known:
            errors[f"lines.{index}.variant_id"] = [_("No such variant of this product.")]
            continue
        if variant_id in wanted:
            errors[f"lines.{index}.variant_id"] = [_("This variant is already in the order.")]
            continue
        qty = _int_field(line.get("quantity"), f"lines.{index}.quantity", errors, minimum=1, maximum=MAX_QUANTITY)
        if qty is not None:
            wanted[variant_id] = qty
    return wanted, errors


def _order_fingerprint(*, product_id, buyer_id, guest_email, wanted) -> dict:
    return {"product": product_id, "buyer": buyer_id, "guest": guest_email, "lines": sorted(wanted.items())}


@locking
def place_order(
    *, actor, product: Product, lines: list[dict], shipping_address: str, guest_email: str = "", guest_name: str = "",
    payment_method: str = "bank_transfer", idempotency_key: str | None = None,
) -> Order:
    """A member, or a guest with an e-mail address, orders variants of a listed product. Stock is
    taken at once (and given back if the order is cancelled); payment follows."""
    community = product.community
    buyer = actor if getattr(actor, "is_authenticated", False) else None
    permissions.require_see_shop(buyer, community)
    settings_ = permissions.shop_settings(community)
    errors: dict[str, list[str]] = {}
    guest_email = (guest_email or "").strip()
    guest_name = (guest_name or "").strip()
    if buyer is None:
        if not settings_.guest_orders:
            raise PermissionDenied(_("This shop takes orders from signed-in members only."))
        try:
            validate_email(guest_email)
        except DjangoValidationError:
            errors["guest_email"] = [_("Give an e-mail address so we can tell you about your order.")]
        if not (1 <= len(guest_name) <= 100):
            errors["guest_name"] = [_("Give your name (1 to 100 characters).")]
    address = (shipping_address or "").strip()
    if not (5 <= len(address) <= 500):
        errors["shipping_address"] = [_("Give a shipping address of 5 to 500 characters.")]
    if idempotency_key is not None and not (1 <= len(idempotency_key) <= 200):
        errors["idempotency_key"] = [_("1 to 200 characters.")]
    wanted, line_errors = _clean_lines(product, lines)
    errors.update(line_errors)
    provider = None
    try:
        provider = payments.provider(payment_method)
    except InvalidInput as exc:
        errors.update(exc.field_errors)
    if errors:
        raise InvalidInput(_("The order was not placed."), field_errors=errors)
    fingerprint = _order_fingerprint(product_id=product.pk, buyer_id=getattr(buyer, "pk", None),
                                     guest_email=guest_email if buyer is None else "", wanted=wanted)
    if idempotency_key:
        existing = _replay(community, idempotency_key, fingerprint)
        if existing is not None:
            return existing
    try:
        with transaction.atomic():
            locked = _lock_product(product)
            if locked.status != Product.Status.LISTED:
                raise Conflict(_("This product is not on sale."), code="not_on_sale")
            variants = list(Variant.objects.select_for_update(of=("self",)).filter(pk__in=wanted, product=locked)
                            .order_by("pk"))
            short = {}
            for variant in variants:
                if variant.stock < wanted[variant.pk]:
                    short[variant.label] = [
                        _("Only %(n)s left of %(label)s.") % {"n": variant.stock, "label": variant.label}
                        if variant.stock else _("%(label)s is sold out.") % {"label": variant.label}]
            if short:
                raise Conflict(_("Not enough stock for this order."), field_errors=short, code="out_of_stock")
            total = sum(locked.price * wanted[v.pk] for v in variants)
            order = Order.objects.create(
                community=community, product=locked, number=f"{community.pk}-{secrets.token_hex(4).upper()}",
                buyer=buyer, guest_email=guest_email if buyer is None else "",
                guest_name=guest_name if buyer is None else "", access_token=secrets.token_urlsafe(24),
                shipping_address=address, currency=locked.currency, total=total, idempotency_key=idempotency_key or None,
            )
            OrderLine.objects.bulk_create([
                OrderLine(order=order, variant=v, quantity=wanted[v.pk], unit_price=locked.price,
                          amount=locked.price * wanted[v.pk]) for v in variants])
            for variant in variants:
                _move_stock(variant=variant, product=locked, change=-wanted[variant.pk], reason="sold", order=order,
                            actor=buyer)
            _payment, instructions = provider.start(order=order)
            record_audit(actor=buyer, action="market.order_placed", obj=order, community=community,
                         changes={"total": total, "lines": {str(k): v for k, v in wanted.items()},
                                  "guest": buyer is None})
            publish_event(name="market.order_placed", community=community,
                          payload={"order": order.number, "product_id": locked.pk, "total": total})
            _notify(name="market.order_placed", product=locked, recipients=[locked.designer],
                    title=_("New order %(number)s for %(title)s: %(units)s units.") % {
                        "number": order.number, "title": locked.title, "units": sum(wanted.values())})
            if buyer is not None:
                _notify(name="market.order_placed_buyer", product=locked, recipients=[buyer],
                        title=_("Order %(number)s placed. %(how)s") % {"number": order.number, "how": instructions.text},
                        payload={"order": order.number})
            _mail_after_commit(
                _("Your order %(number)s") % {"number": order.number},
                _("Thank you for your order of %(title)s.\n%(how)s") % {"title": locked.title, "how": instructions.text},
                buyer.email if buyer else guest_email,
            )
    except IntegrityError:
        if idempotency_key:  # a concurrent request with the same key won the race
            existing = _replay(community, idempotency_key, fingerprint)
            if existing is not None:
                return existing
        raise
    return order


def _replay(community, key: str, fingerprint: dict) -> Order | None:
    existing = Order.objects.filter(community=community, idempotency_key=key).prefetch_related("lines").first()
    if existing is None:
        return None
    theirs = _order_fingerprint(product_id=existing.product_id, buyer_id=existing.buyer_id,
                                guest_email=existing.guest_email, wanted={ln.variant_id: ln.quantity for ln in existing.lines.all()})
    if theirs != fingerprint:
        raise Conflict(_("This idempotency key was used for a different order."), code="idempotency_mismatch")
    return existing


@locking
def confirm_payment(*, actor, order: Order, amount_received: int | None = None,
                    received_at: datetime | None = None) -> Order:
    """The provider confirms the payment; the money lands in escrow or income per the shop's rule.
    A second confirmation is refused: an order is paid once. `received_at` is when the transfer
    arrived (it may be confirmed a day later); the ledger dates the entry then."""
    permissions.require_organiser(actor, order.community)
    if received_at is not None and (timezone.is_naive(received_at) or received_at > timezone.now()
                                    or received_at < order.created_at):
        raise InvalidInput(_("The payment was not confirmed."), field_errors={"received_at": [
            _("A time with its zone, after the order was placed and not in the future.")]})
    with transaction.atomic():
        locked = _lock_order(order)
        payment = Payment.objects.select_for_update(of=("self",)).get(order=locked)
        if payment.status == Payment.Status.CONFIRMED or locked.paid_at is not None:
            raise Conflict(_("Order %(number)s is already paid.") % {"number": locked.number}, code="already_paid")
        if locked.status != Order.Status.PENDING:
            raise Conflict(_("Order %(number)s is %(status)s and cannot be paid.") % {
                "number": locked.number, "status": locked.get_status_display()}, code="not_payable")
        payments.provider(payment.provider).check_confirmation(
            actor=actor, payment=payment, evidence={"amount_received": amount_received})
        destination = permissions.shop_settings(locked.community).payment_destination
        now = received_at or timezone.now()
        payment.payment_tx = accounting.book_payment(order=locked, actor=actor, destination=destination,
                                                     occurred_at=received_at)
        if destination == ShopSettings.Destination.INCOME:
            payment.revenue_tx = accounting.recognise_revenue(order=locked, actor=actor, source=destination,
                                                              occurred_at=received_at)
        payment.status = Payment.Status.CONFIRMED
        payment.destination = destination
        payment.confirmed_by = actor
        payment.confirmed_at = now
        payment.save()
        locked.status = Order.Status.PAID
        locked.paid_at = now
        locked.save(update_fields=["status", "paid_at"])
        record_audit(actor=actor, action="market.payment_confirmed", obj=locked, community=locked.community,
                     changes={"amount": payment.amount, "destination": destination, "provider": payment.provider})
        publish_event(name="market.order_paid", community=locked.community,
                      payload={"order": locked.number, "product_id": locked.product_id, "total": locked.total})
        product = locked.product
        _notify(name="market.order_paid", product=product, recipients=[product.designer],
                title=_("Sold: order %(number)s for %(title)s was paid.") % {"number": locked.number, "title": product.title})
        if locked.buyer_id:
            _notify(name="market.order_paid_buyer", product=product, recipients=[locked.buyer],
                    title=_("We received your payment for order %(number)s.") % {"number": locked.number},
                    payload={"order": locked.number})
        _mail_after_commit(_("Payment received for order %(number)s") % {"number": locked.number},
                           _("We received your payment; we will tell you when your parcel is on its way."),
                           locked.buyer_email)
    return locked


def _order_actor_is_buyer(actor, order: Order, token: str | None) -> bool:
    if token and secrets.compare_digest(token.encode(), order.access_token.encode()):  # any text, never a TypeError
        return True
    return getattr(actor, "is_authenticated", False) and order.buyer_id == actor.pk


@locking
def cancel_order(*, actor, order: Order, token: str | None = None, reason: str = "") -> Order:
    """Before payment the buyer (or an organiser) may cancel; the units go back to stock."""
    if not (_order_actor_is_buyer(actor, order, token) or permissions.is_organiser(actor, order.community)):
        raise NotFound(_("No such order."))
    with transaction.atomic():
        product = _lock_product(order.product)
        locked = _lock_order(order)
        if locked.status != Order.Status.PENDING:
            raise Conflict(_("Only an unpaid order can be cancelled; ask the organisers for a refund."),
                           code="not_cancellable")
        _return_stock(locked, product, actor)
        Payment.objects.filter(order=locked).update(status=Payment.Status.VOID)
        locked.status = Order.Status.CANCELLED
        locked.cancelled_at = timezone.now()
        locked.save(update_fields=["status", "cancelled_at"])
        record_audit(actor=actor, action="market.order_cancelled", obj=locked, community=locked.community,
                     changes={"reason": reason[:200]})
        publish_event(name="market.order_cancelled", community=locked.community,
                      payload={"order": locked.number, "product_id": product.pk})
        _notify(name="market.order_cancelled", product=product, recipients=[product.designer],
                title=_("Order %(number)s for %(title)s was cancelled.") % {"number": locked.number, "title": product.title})
    return locked


def _return_stock(order: Order, product: Product, actor) -> None:
    lines = {line.variant_id: line.quantity for line in order.lines.all()}
    variants = list(Variant.objects.select_for_update(of=("self",)).filter(pk__in=lines).order_by("pk"))
    for variant in variants:
        _move_stock(variant=variant, product=product, change=lines[variant.pk], reason="returned", order=order,
                    actor=actor)


@locking
def refund_order(*, actor, order: Order, restock: bool = True, reason: str = "") -> Order:
    """Refund a paid order: every ledger transaction it made is reversed exactly, and its units go
    back to stock unless they are lost (restock=False)."""
    permissions.require_organiser(actor, order.community)
    if len(reason or "") > 300:
        raise InvalidInput(_("The order was not refunded."), field_errors={"reason": [_("At most 300 characters.")]})
    with transaction.atomic():
        product = _lock_product(order.product)
        locked = _lock_order(order)
        if locked.status not in (Order.Status.PAID, Order.Status.SHIPPED, Order.Status.DELIVERED):
            raise Conflict(_("Only a paid order can be refunded."), code="not_refundable")
        payment = Payment.objects.select_for_update(of=("self",)).get(order=locked)
        if payment.revenue_tx:
            accounting.reverse(order=locked, tx_id=payment.revenue_tx, actor=actor, what="revenue")
        accounting.reverse(order=locked, tx_id=payment.payment_tx, actor=actor, what="payment")
        payment.status = Payment.Status.REFUNDED
        payment.refunded_at = timezone.now()
        payment.save(update_fields=["status", "refunded_at"])
        if restock:
            _return_stock(locked, product, actor)
        locked.status = Order.Status.REFUNDED
        locked.refunded_at = timezone.now()
        locked.save(update_fields=["status", "refunded_at"])
        record_audit(actor=actor, action="market.order_refunded", obj=locked, community=locked.community,
                     changes={"amount": payment.amount, "restock": restock, "reason": reason})
        publish_event(name="market.order_refunded", community=locked.community,
                      payload={"order": locked.number, "product_id": product.pk})
        _notify(name="market.order_refunded", product=product, recipients=[product.designer],
                title=_("Order %(number)s for %(title)s was refunded.") % {"number": locked.number, "title": product.title})
        _mail_after_commit(_("Refund for order %(number)s") % {"number": locked.number},
                           _("We have refunded your order %(number)s.") % {"number": locked.number}, locked.buyer_email)
    return locked


# --- shipping ---------------------------------------------------------------------------------------

TRACKING_RE = re.compile(r"^[A-Za-z0-9-]{4,60}$")


@locking
def ship_order(*, actor, order: Order, carrier: str, tracking_number: str, trusted: bool = False,
               source: str = "ui") -> Order:
    if not trusted:
        permissions.require_organiser(actor, order.community)
    errors: dict[str, list[str]] = {}
    carrier = (carrier or "").strip()
    tracking_number = (tracking_number or "").strip()
    if not (1 <= len(carrier) <= 60):
        errors["carrier"] = [_("Name the carrier.")]
    if not TRACKING_RE.match(tracking_number):
        errors["tracking_number"] = [_("4 to 60 letters, digits or hyphens.")]
    if errors:
        raise InvalidInput(_("The order was not shipped."), field_errors=errors)
    with transaction.atomic():
        locked = _lock_order(order)
        if locked.status != Order.Status.PAID:
            raise Conflict(_("Only a paid order can be shipped."), code="not_shippable")
        locked.status = Order.Status.SHIPPED
        locked.carrier, locked.tracking_number = carrier, tracking_number
        locked.shipped_at = timezone.now()
        locked.save(update_fields=["status", "carrier", "tracking_number", "shipped_at"])
        ShippingEvent.objects.create(order=locked, kind=ShippingEvent.Kind.HANDED_OVER, occurred_at=locked.shipped_at,
                                     note=carrier, actor=actor, source=source)
        record_audit(actor=actor, action="market.order_shipped", obj=locked, community=locked.community,
                     changes={"carrier": carrier, "tracking_number": tracking_number})
        _shipping_messages(locked, _("Order %(number)s was handed to %(carrier)s, tracking %(tracking)s.") % {
            "number": locked.number, "carrier": carrier, "tracking": tracking_number}, "handed_over")
    return locked


def _shipping_messages(order: Order, title: str, kind: str) -> None:
    product = order.product
    publish_event(name="market.shipping", community=order.community,
                  payload={"order": order.number, "kind": kind, "product_id": product.pk})
    recipients = [product.designer] + ([order.buyer] if order.buyer_id else [])
    _notify(name="market.shipping", product=product, recipients=recipients, title=title,
            payload={"order": order.number, "kind": kind})
    _mail_after_commit(_("Your order %(number)s") % {"number": order.number}, title, order.buyer_email)


@locking
def add_shipping_event(*, actor, order: Order, kind: str, location: str = "", note: str = "",
                       occurred_at: datetime | None = None, source: str = "ui", trusted: bool = False) -> ShippingEvent:
    """A step of the parcel's journey. 'delivered' completes the order and, when the money was
    held in escrow, releases it to the revenue split."""
    if not trusted:
        permissions.require_organiser(actor, order.community)
    errors: dict[str, list[str]] = {}
    if kind not in ShippingEvent.Kind.values:
        errors["kind"] = [_("Choose one of: %(kinds)s.") % {"kinds": ", ".join(ShippingEvent.Kind.values)}]
    if len(location or "") > 120:
        errors["location"] = [_("At most 120 characters.")]
    if len(note or "") > 300:
        errors["note"] = [_("At most 300 characters.")]
    if source not in ("ui", "api", "carrier"):
        errors["source"] = [_("Unknown source.")]
    now = timezone.now()
    if occurred_at is not None and occurred_at > now + timedelta(minutes=5):
        errors["occurred_at"] = [_("A shipping event cannot lie in the future.")]
    if errors:
        raise InvalidInput(_("The shipping event was not recorded."), field_errors=errors)
    with transaction.atomic():
        locked = _lock_order(order)
        if locked.status != Order.Status.SHIPPED:
            raise Conflict(_("Only an order on its way can get shipping events."), code="not_shipped")
        event = ShippingEvent.objects.create(order=locked, kind=kind, location=(location or "").strip(),
                                             note=(note or "").strip(), occurred_at=occurred_at or now, source=source,
                                             actor=actor)
        changes = {"kind": kind, "location": event.location}
        if kind == ShippingEvent.Kind.DELIVERED:
            locked.status = Order.Status.DELIVERED
            locked.delivered_at = event.occurred_at
            locked.save(update_fields=["status", "delivered_at"])
            payment = Payment.objects.select_for_update(of=("self",)).get(order=locked)
            if payment.revenue_tx is None:  # held in escrow until now
                payment.revenue_tx = accounting.recognise_revenue(order=locked, actor=actor, source=payment.destination,
                                                                  occurred_at=occurred_at)
                payment.save(update_fields=["revenue_tx"])
                changes["escrow_released"] = True
        record_audit(actor=actor, action="market.shipping_event", obj=locked, community=locked.community, changes=changes)
        _shipping_messages(locked, _("Order %(number)s: %(kind)s %(location)s") % {
            "number": locked.number, "kind": event.get_kind_display(), "location": event.location}, kind)
    return event


# --- reviews ----------------------------------------------------------------------------------------


def add_review(*, actor, order: Order, rating: int, text: str = "", token: str | None = None) -> Review:
    """The buyer rates what they bought; the designer hears of it at once."""
    if not _order_actor_is_buyer(actor, order, token):
        raise NotFound(_("No such order."))
    order = Order.objects.select_related("product", "community", "product__designer").get(pk=order.pk)
    errors: dict[str, list[str]] = {}
    value = _int_field(rating, "rating", errors, minimum=1, maximum=5)
    text = (text or "").strip()
    if len(text) > 2000:
        errors["text"] = [_("At most 2000 characters.")]
    if order.status not in (Order.Status.PAID, Order.Status.SHIPPED, Order.Status.DELIVERED):
        errors["order"] = [_("You can review a product once you have paid for it.")]
    if not errors and Review.objects.filter(order=order).exists():
        raise Conflict(_("You already reviewed this order."), code="already_reviewed")
    if errors:
        raise InvalidInput(_("The review was not saved."), field_errors=errors)
    author = actor if getattr(actor, "is_authenticated", False) else None
    try:
        with transaction.atomic():
            review = Review.objects.create(
                product=order.product, order=order, author=author, rating=value, text=text,
                author_name=(author.name if author else order.guest_name)[:100] or "-",
            )
            record_audit(actor=author, action="market.review_posted", obj=review, community=order.community,
                         changes={"rating": value})
            product = order.product
            _notify(name="market.review", product=product, recipients=[product.designer],
                    title=_("New review of %(title)s: %(stars)s/5 – %(text)s") % {
                        "title": product.title, "stars": value, "text": text[:80]},
                    payload={"review_id": review.pk, "rating": value})
    except IntegrityError as exc:
        raise Conflict(_("You already reviewed this order."), code="already_reviewed") from exc
    return review


# --- reports ----------------------------------------------------------------------------------------


def send_reports(*, period: str, now: datetime | None = None) -> int:
    """The sales and stock report of the last whole `period` (daily, weekly, monthly) to every
    designer with a product in the shop, in the app and by e-mail. A period is reported once:
    running again (or from an hourly job) sends nothing new."""
    from pumasi.communities.models import Community
    from pumasi.market import selectors
    from pumasi.market.models import ReportRun

    if period not in ReportRun.Period.values:
        raise InvalidInput(_("Unknown report period."), field_errors={"period": [", ".join(ReportRun.Period.values)]})
    now = now or timezone.now()
    sent = 0
    communities = Community.objects.filter(products__listed_at__isnull=False).distinct().order_by("pk")
    for community in communities:
        start, end = selectors.last_complete_period(period, now, community.time_zone)
        designers = (Product.objects.filter(community=community, listed_at__isnull=False, listed_at__lt=end)
                     .exclude(ended_at__lt=start).values_list("designer_id", flat=True).distinct())
        for designer_id in sorted(set(designers)):
            if ReportRun.objects.filter(community=community, designer_id=designer_id, period=period,
                                        period_start=start).exists():
                continue
            designer = Product.objects.filter(designer_id=designer_id).select_related("designer").first().designer
            content = selectors.sales_and_stock(community=community, designer=designer, start=start, end=end)
            try:
                with transaction.atomic():
                    run = ReportRun.objects.create(community=community, designer=designer, period=period,
                                                   period_start=start, period_end=end, content=content, emailed=True)
                    title = _("Your %(period)s shop report: %(units)s units sold, %(revenue)s in sales, "
                              "%(royalty)s earned.") % {
                        "period": run.get_period_display().lower(), "units": content["units"],
                        "revenue": content["revenue"], "royalty": content["royalty"]}
                    tell(name="market.report", community=community, recipient=designer, title=title,
                         url=f"/c/{community.slug}/shop/reports/{run.pk}/", payload={"report_id": run.pk, "period": period})
                    record_audit(actor=None, action="market.report_sent", obj=run, community=community,
                                 changes={"period": period, "start": start.isoformat()})
                    _mail_after_commit(_("Shop report (%(period)s)") % {"period": run.get_period_display()},
                                       _report_text(content, title), designer.email)
            except IntegrityError:  # another worker sent it a moment ago
                continue
            sent += 1
    return sent


def _report_text(content: dict, title: str) -> str:
    lines = [title, ""]
    for product in content["products"]:
        lines.append(f"{product['title']}: {product['units']} × / {product['revenue']} {content['currency']}")
        for variant in product["variants"]:
            flag = " (!)" if variant["low"] else ""
            lines.append(f"  {variant['label']}: {_('in stock')} {variant['stock']}{flag}, "
                         f"{_('sold')} {variant['sold_in_period']}")
    return "\n".join(lines)


# --- settlement -------------------------------------------------------------------------------------


def settle_period(*, actor, community, period_start, period_end):
    """Step 16: the ledger settles the period (statements and payouts for every member who earned),
    then each designer hears what they earned and what was paid to them, once."""
    from pumasi.ledger import services as ledger
    from pumasi.platform.models import AuditEntry

    permissions.require_organiser(actor, community)
    settlement = ledger.settle(actor=actor, community=community, period_start=period_start, period_end=period_end)
    designers = set(Product.objects.filter(community=community).values_list("designer_id", flat=True))
    from pumasi.ledger.models import Statement

    for statement in Statement.objects.filter(settlement=settlement, member_id__in=designers).select_related("member"):
        if AuditEntry.objects.filter(action="market.statement_sent", object_type="ledger.statement",
                                     object_id=str(statement.pk)).exists():
            continue
        with transaction.atomic():
            record_audit(actor=actor, action="market.statement_sent", obj=statement, community=community,
                         changes={"earned": statement.earned, "paid": statement.paid})
            tell(name="market.settled", community=community, recipient=statement.member,
                 title=_("Settlement %(start)s – %(end)s: you earned %(earned)s and %(paid)s was paid to you "
                         "(%(n)s sales lines).") % {
                     "start": period_start, "end": period_end, "earned": statement.earned, "paid": statement.paid,
                     "n": statement.lines.count()},
                 url=f"/c/{community.slug}/shop/statements/",
                 payload={"statement_id": statement.pk, "settlement_id": settlement.pk, "earned": statement.earned,
                          "paid": statement.paid})
    return settlement


# --- peer-to-peer sales with 2-of-3 escrow (seed 001) ---------------------------------------------


def create_peer_listing(*, actor, community, title: str, price: int, description: str = ""):
    from pumasi.market.models import PeerListing

    if not permissions.is_member(actor, community):
        raise PermissionDenied(_("Only members may sell to other members."))
    if not permissions.shop_settings(community).peer_trade:
        raise Conflict(_("This community has not enabled sales between members."), code="peer_trade_off")
    errors: dict[str, list[str]] = {}
    title = (title or "").strip()
    if not 1 <= len(title) <= 140:
        errors["title"] = [_("Give a title of 1 to 140 characters.")]
    if len(description or "") > 3000:
        errors["description"] = [_("At most 3000 characters.")]
    value = _int_field(price, "price", errors, minimum=1)
    if errors:
        raise InvalidInput(_("The item was not listed."), field_errors=errors)
    with transaction.atomic():
        listing = PeerListing.objects.create(community=community, seller=actor, title=title, price=value,
                                             description=(description or "").strip(), currency=community.currency)
        record_audit(actor=actor, action="market.peer_listed", obj=listing, community=community,
                     changes={"title": title, "price": value})
        publish_event(name="market.peer_listed", community=community, payload={"peer_listing_id": listing.pk})
    return listing


@locking
def buy_peer_listing(*, actor, listing):
    """The buyer pays into a new 2-of-3 escrow; a committee member not party to the sale moderates.
    Release to the seller or refund to the buyer then follows the ledger's escrow rules."""
    from pumasi.communities.models import Membership
    from pumasi.ledger import services as ledger
    from pumasi.market.models import PeerListing

    community = listing.community
    if not permissions.is_member(actor, community):
        raise PermissionDenied(_("Only members may buy from other members."))
    with transaction.atomic():
        _bound_lock_wait()
        locked = PeerListing.objects.select_for_update(of=("self",)).get(pk=listing.pk)
        if locked.escrow_id or locked.withdrawn_at:
            raise Conflict(_("This item is no longer for sale."), code="not_for_sale")
        if locked.seller_id == actor.pk:
            raise Conflict(_("You cannot buy your own item."), code="own_item")
        moderator = (Membership.objects.filter(community=community, role__in=["committee", "organiser"])
                     .exclude(user_id__in=[actor.pk, locked.seller_id]).select_related("user").order_by("pk").first())
        if moderator is None:
            raise Conflict(_("No committee member is free to moderate this sale."), code="no_moderator")
        escrow = ledger.open_escrow(actor=actor, community=community, seller=locked.seller, moderator=moderator.user,
                                    amount=locked.price, idempotency_key=f"market:peer:{locked.pk}",
                                    memo=_("Peer sale: %(title)s") % {"title": locked.title}, currency=locked.currency)
        locked.buyer, locked.escrow = actor, escrow
        locked.save(update_fields=["buyer", "escrow"])
        record_audit(actor=actor, action="market.peer_bought", obj=locked, community=community,
                     changes={"escrow": escrow.pk, "moderator": moderator.user_id})
        tell(name="market.peer_sold", community=community, recipient=locked.seller,
             title=_("%(title)s was bought; the money is held in escrow.") % {"title": locked.title},
             payload={"peer_listing_id": locked.pk, "escrow_id": escrow.pk})
    return locked
