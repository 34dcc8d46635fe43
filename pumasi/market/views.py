"""Pages of the shop: the product list and page (with a preview card for sharing), ordering as a
member or guest, the order page, the organisers' order desk and the designer's reports."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from pumasi.communities.models import Community
from pumasi.core.errors import DomainError, NotFound, PermissionDenied
from pumasi.core.forms import add_domain_error
from pumasi.market import permissions, selectors, services
from pumasi.market.models import Order, ReportRun, ShippingEvent


def _community(request, slug: str) -> Community:
    community = Community.objects.filter(slug=slug).first()
    user = request.user if request.user.is_authenticated else None
    if community is None or not permissions.may_see_shop(user, community):
        raise NotFound(_("No such community."))
    return community


def _user(request):
    return request.user if request.user.is_authenticated else None


class OrderForm(forms.Form):
    shipping_address = forms.CharField(label=gettext_lazy("Shipping address"), max_length=500,
                                       widget=forms.Textarea(attrs={"rows": 2}))
    guest_name = forms.CharField(label=gettext_lazy("Your name"), max_length=100, required=False)
    guest_email = forms.EmailField(label=gettext_lazy("Your e-mail address"), required=False)

    def __init__(self, *args, product=None, **kwargs):
        super().__init__(*args, **kwargs)
        for variant in product.variants.all():
            self.fields[f"qty_{variant.pk}"] = forms.IntegerField(
                label=_("%(label)s (in stock: %(stock)s)") % {"label": variant.label, "stock": variant.stock},
                min_value=0, max_value=services.MAX_QUANTITY, initial=0, required=False)

    def lines(self):
        return [{"variant_id": int(name[4:]), "quantity": value} for name, value in self.cleaned_data.items()
                if name.startswith("qty_") and value]


class PriceForm(forms.Form):
    price = forms.IntegerField(label=gettext_lazy("Price"), min_value=1)
    terms = forms.CharField(label=gettext_lazy("Terms of sale"), max_length=3000, required=False,
                            widget=forms.Textarea(attrs={"rows": 3}))


SHOP_PAGE = 48


def shop(request, slug: str):
    community = _community(request, slug)
    products = selectors.shop_products(community, _user(request)).order_by("-pk")
    before = request.GET.get("before", "")
    if before.isdigit():
        products = products.filter(pk__lt=int(before))
    page = list(products[:SHOP_PAGE + 1])
    more = len(page) > SHOP_PAGE
    page = page[:SHOP_PAGE]
    return render(request, "market/shop.html", {"community": community, "products": page,
                                                "next_before": page[-1].pk if more else None,
                                                "is_organiser": permissions.is_organiser(_user(request), community)})


def product(request, slug: str, product_id: int, *, price_form: PriceForm | None = None, status: int = 200):
    community = _community(request, slug)
    item = selectors.product_for(_user(request), community, product_id)
    user = _user(request)
    order_form = OrderForm(product=item)
    may_price = permissions.is_organiser(user, community) or permissions.has_production_right(user, item)
    if may_price and price_form is None:
        price_form = PriceForm(initial={"price": item.price or item.floor_price, "terms": item.terms})
    return render(request, "market/product.html", {
        "community": community, "product": item, "order_form": order_form,
        "price_form": price_form if may_price else None,
        "is_organiser": permissions.is_organiser(user, community), "reviews": item.reviews.all()[:20],
        "guest_allowed": permissions.shop_settings(community).guest_orders,
        "is_designer": may_price and item.designer_id == getattr(user, "pk", None),
    }, status=status)


@require_POST
def place_order(request, slug: str, product_id: int):
    community = _community(request, slug)
    item = selectors.product_for(_user(request), community, product_id)
    form = OrderForm(request.POST, product=item)
    if form.is_valid():
        try:
            order = services.place_order(
                actor=_user(request), product=item, lines=form.lines(),
                shipping_address=form.cleaned_data["shipping_address"],
                guest_email=form.cleaned_data.get("guest_email") or "", guest_name=form.cleaned_data.get("guest_name") or "",
            )
            messages.success(request, _("Thank you! Your order %(number)s is placed.") % {"number": order.number})
            return redirect("market:order", token=order.access_token)
        except DomainError as error:
            add_domain_error(form, error)
    return render(request, "market/product.html", {
        "community": community, "product": item, "order_form": form, "price_form": None,
        "is_organiser": permissions.is_organiser(_user(request), community), "reviews": item.reviews.all()[:20],
        "guest_allowed": permissions.shop_settings(community).guest_orders,
    }, status=422)


@login_required
@require_POST
def set_price(request, slug: str, product_id: int):
    community = _community(request, slug)
    item = selectors.product_for(request.user, community, product_id)
    form = PriceForm(request.POST)
    if form.is_valid():
        try:
            services.set_price_and_terms(actor=request.user, product=item, price=form.cleaned_data["price"],
                                         terms=form.cleaned_data["terms"])
        except DomainError as error:
            if isinstance(error, NotFound | PermissionDenied):
                raise
            add_domain_error(form, error)
        else:
            messages.success(request, _("Price and terms saved."))
            return redirect("market:product", slug=slug, product_id=product_id)
    # The refusal is shown beside the field it concerns, with what was typed kept.
    return product(request, slug, product_id, price_form=form, status=422)


@login_required
@require_POST
def product_action(request, slug: str, product_id: int, action: str):
    community = _community(request, slug)
    item = selectors.product_for(request.user, community, product_id)
    try:
        if action == "list":
            services.list_product(actor=request.user, product=item)
            messages.success(request, _("The product is on sale."))
        elif action == "end":
            services.end_sale(actor=request.user, product=item)
            messages.success(request, _("The sale has ended and the designer's access is withdrawn."))
        elif action == "stock":
            quantities = {str(v.pk): request.POST.get(f"qty_{v.pk}") for v in item.variants.all()
                          if request.POST.get(f"qty_{v.pk}") not in (None, "", "0")}
            services.receive_stock(actor=request.user, product=item, quantities=quantities,
                                   note=request.POST.get("note", "")[:200])
            messages.success(request, _("Stock received."))
        else:
            raise NotFound(_("Unknown action."))
    except DomainError as error:
        if isinstance(error, NotFound):
            raise
        messages.error(request, "; ".join([error.message, *[m for ms in error.field_errors.values() for m in ms]]))
    return redirect("market:product", slug=slug, product_id=product_id)


def order(request, token: str):
    found = selectors.order_by_token(token)
    return render(request, "market/order.html", {"order": found, "community": found.community,
                                                 "payment": getattr(found, "payment", None),
                                                 "kinds": ShippingEvent.Kind.choices})


@require_POST
def order_action(request, token: str, action: str):
    found = selectors.order_by_token(token)
    try:
        if action == "cancel":
            services.cancel_order(actor=_user(request), order=found, token=token)
            messages.success(request, _("Your order is cancelled."))
        elif action == "review":
            services.add_review(actor=_user(request), order=found, token=token, rating=request.POST.get("rating"),
                                text=request.POST.get("text", ""))
            messages.success(request, _("Thank you for your review; the designer will see it."))
        else:
            raise NotFound(_("Unknown action."))
    except DomainError as error:
        if isinstance(error, NotFound):
            raise
        messages.error(request, "; ".join([error.message, *[m for ms in error.field_errors.values() for m in ms]]))
    return redirect("market:order", token=token)


@login_required
def desk(request, slug: str):
    """The organisers' order desk: confirm transfers, ship, record delivery, refund."""
    community = _community(request, slug)
    permissions.require_organiser(request.user, community)
    status = request.GET.get("status") or ""
    orders = selectors.orders_for(request.user, community).select_related("payment").order_by("-pk")
    if status in Order.Status.values:
        orders = orders.filter(status=status)
    return render(request, "market/desk.html", {"community": community, "orders": orders[:100], "status": status,
                                                "statuses": Order.Status.choices, "kinds": ShippingEvent.Kind.choices})


@login_required
@require_POST
def desk_action(request, slug: str, number: str, action: str):
    community = _community(request, slug)
    found = selectors.order_for(request.user, community, number)
    post = request.POST
    try:
        if action == "confirm":
            services.confirm_payment(actor=request.user, order=found, amount_received=post.get("amount_received"))
        elif action == "ship":
            services.ship_order(actor=request.user, order=found, carrier=post.get("carrier", ""),
                                tracking_number=post.get("tracking_number", ""))
        elif action == "event":
            services.add_shipping_event(actor=request.user, order=found, kind=post.get("kind", ""),
                                        location=post.get("location", ""))
        elif action == "refund":
            services.refund_order(actor=request.user, order=found, restock=post.get("restock") == "on",
                                  reason=post.get("reason", ""))
        elif action == "cancel":
            services.cancel_order(actor=request.user, order=found)
        else:
            raise NotFound(_("Unknown action."))
        messages.success(request, _("Order %(number)s updated.") % {"number": number})
    except DomainError as error:
        if isinstance(error, NotFound):
            raise
        messages.error(request, "; ".join([error.message, *[m for ms in error.field_errors.values() for m in ms]]))
    return redirect("market:desk", slug=slug)


@login_required
def report(request, slug: str, report_id: int):
    community = _community(request, slug)
    run = ReportRun.objects.filter(community=community, pk=report_id).first()
    if run is None or (run.designer_id != request.user.pk and not permissions.is_organiser(request.user, community)):
        raise NotFound(_("No such report."))
    return render(request, "market/report.html", {"community": community, "run": run, "content": run.content})


class SettleForm(forms.Form):
    period_start = forms.DateField(label=gettext_lazy("From (first day)"), widget=forms.DateInput(attrs={"type": "date"}))
    period_end = forms.DateField(label=gettext_lazy("Until (the day after the last)"),
                                 widget=forms.DateInput(attrs={"type": "date"}))


@login_required
def statements(request, slug: str):
    """The designer's statements, each sale a line; organisers settle a period here (step 16)."""
    community = _community(request, slug)
    if permissions.role_of(request.user, community) is None:
        raise NotFound(_("No such community."))
    organiser = permissions.is_organiser(request.user, community)
    form = SettleForm(request.POST or None) if organiser else None
    status = 200
    if request.method == "POST":
        permissions.require_organiser(request.user, community)
        if form.is_valid():
            try:
                settlement = services.settle_period(actor=request.user, community=community,
                                                    period_start=form.cleaned_data["period_start"],
                                                    period_end=form.cleaned_data["period_end"])
            except DomainError as error:
                if isinstance(error, NotFound | PermissionDenied):
                    raise
                add_domain_error(form, _period_errors(error))
            else:
                messages.success(request, _("Settled %(start)s – %(end)s: %(earned)s earned, %(paid)s paid out.") % {
                    "start": settlement.period_start, "end": settlement.period_end,
                    "earned": settlement.total_earned, "paid": settlement.total_paid})
                return redirect("market:statements", slug=slug)
        status = 422
    return render(request, "market/statements.html", {
        "community": community, "statements": selectors.statements_of(request.user, community)[:24],
        "form": form, "organiser": organiser}, status=status)


def _period_errors(error: DomainError) -> DomainError:
    """The ledger names the whole period; the form shows it beside the end date."""
    if "period" in error.field_errors:
        error.field_errors = {("period_end" if k == "period" else k): v for k, v in error.field_errors.items()}
    return error
