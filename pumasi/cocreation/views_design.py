"""Pages of community product design: the shareable call page (with a preview card), submitting
and scoring designs, ranked results, and the production page of one product."""

from __future__ import annotations

from datetime import date

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from pumasi.cocreation import services_design as services
from pumasi.cocreation.models import DesignCall, ProductionOrder
from pumasi.communities.models import Community
from pumasi.communities.permissions import role_of
from pumasi.core.errors import DomainError, NotFound
from pumasi.market import permissions as market_permissions
from pumasi.market.models import Product


def _error_text(error: DomainError) -> str:
    return "; ".join([error.message, *[m for ms in error.field_errors.values() for m in ms]])


def _call(request, slug: str, call_id: int) -> DesignCall:
    call = DesignCall.objects.select_related("community").filter(community__slug=slug, pk=call_id).first()
    if call is None or not (call.public or role_of(request.user, call.community) is not None):
        raise NotFound(_("No such design call."))
    return call


def call_page(request, slug: str, call_id: int):
    call = _call(request, slug, call_id)
    now = timezone.now()
    member = role_of(request.user, call.community) is not None
    organiser = market_permissions.is_organiser(request.user, call.community)
    designs = services.ranked(call) if organiser and now >= call.submissions_close_at else list(
        call.designs.select_related("designer").prefetch_related("variants").order_by("pk"))
    return render(request, "cocreation/design_call.html", {
        "call": call, "community": call.community, "designs": designs, "member": member, "organiser": organiser,
        "submitting": now < call.submissions_close_at, "scoring": call.submissions_close_at <= now < call.scoring_closes_at,
    })


@login_required
@require_POST
def submit(request, slug: str, call_id: int):
    call = _call(request, slug, call_id)
    try:
        services.submit_design(actor=request.user, call=call, title=request.POST.get("title", ""),
                               description=request.POST.get("description", ""), image=request.FILES.get("image"),
                               variants=[v.strip() for v in request.POST.get("variants", "").split(",") if v.strip()])
        messages.success(request, _("Your design is in. Good luck!"))
    except DomainError as error:
        messages.error(request, _error_text(error))
    return redirect("cocreation:design_call", slug=slug, call_id=call_id)


@login_required
@require_POST
def score(request, slug: str, call_id: int, design_id: int):
    call = _call(request, slug, call_id)
    design = call.designs.filter(pk=design_id).first()
    if design is None:
        raise NotFound(_("No such design."))
    try:
        value = int(request.POST.get("score", ""))
    except ValueError:
        value = -1
    try:
        services.score_design(actor=request.user, design=design, score=value)
        messages.success(request, _("Thank you for scoring."))
    except DomainError as error:
        messages.error(request, _error_text(error))
    return redirect("cocreation:design_call", slug=slug, call_id=call_id)


@login_required
def production_page(request, slug: str, product_id: int):
    community = Community.objects.filter(slug=slug).first()
    product = Product.objects.select_related("designer").filter(community=community, pk=product_id).first() if community else None
    if product is None or not (market_permissions.is_organiser(request.user, community)
                               or market_permissions.has_production_right(request.user, product)):
        raise NotFound(_("No such product in production."))
    orders = ProductionOrder.objects.filter(product=product).select_related("plan").prefetch_related(
        "updates", "plan__lines__variant").order_by("-pk")
    return render(request, "cocreation/production.html", {
        "community": community, "product": product, "orders": orders, "variants": product.variants.order_by("pk"),
        "organiser": market_permissions.is_organiser(request.user, community), "steps": ProductionOrder.Status.choices,
    })


@login_required
@require_POST
def production_request(request, slug: str, product_id: int):
    community = Community.objects.filter(slug=slug).first()
    product = Product.objects.filter(community=community, pk=product_id).first() if community else None
    if product is None:
        raise NotFound(_("No such product in production."))
    quantities = {}
    for variant in product.variants.all():
        raw = request.POST.get(f"qty_{variant.pk}", "").strip()
        if raw and raw != "0":
            try:
                quantities[str(variant.pk)] = int(raw)
            except ValueError:
                quantities[str(variant.pk)] = raw
    try:
        target = date.fromisoformat(request.POST.get("target_date", ""))
    except ValueError:
        target = None
    try:
        services.request_production(actor=request.user, product=product, quantities=quantities, target_date=target,
                                    materials=request.POST.get("materials", ""), note=request.POST.get("note", ""))
        messages.success(request, _("Production requested."))
    except DomainError as error:
        if isinstance(error, NotFound):
            raise
        messages.error(request, _error_text(error))
    return redirect("cocreation:production", slug=slug, product_id=product_id)


@login_required
@require_POST
def production_advance(request, slug: str, order_id: int):
    community = Community.objects.filter(slug=slug).first()
    if community is None:
        raise NotFound(_("No such community."))
    order = services.production_order_for(request.user, community, order_id)
    try:
        services.advance_production(actor=request.user, order=order, status=request.POST.get("status", ""),
                                    note=request.POST.get("note", ""))
        messages.success(request, _("Production updated; the designer was told."))
    except DomainError as error:
        if isinstance(error, NotFound):
            raise
        messages.error(request, _error_text(error))
    return redirect("cocreation:production", slug=slug, product_id=order.product_id)
