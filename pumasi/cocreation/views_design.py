"""Pages of community product design: the shareable call page (with a preview card), submitting
and scoring designs, ranked results, and the production page of one product."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from pumasi.cocreation import services_design as services
from pumasi.cocreation.models import Design, DesignCall, ProductionOrder
from pumasi.communities.models import Community
from pumasi.communities.permissions import role_of
from pumasi.core.errors import DomainError, NotFound
from pumasi.core.forms import add_domain_error
from pumasi.market import permissions as market_permissions
from pumasi.market.models import Product

LOCAL_INPUT = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]


def _percent_to_bp(value: Decimal | None) -> int:
    return int((value or Decimal(0)) * 100)


class CallForm(forms.Form):
    """Times are typed in the community's time zone (the view activates it)."""

    title = forms.CharField(label=gettext_lazy("Title"), max_length=140)
    brief = forms.CharField(label=gettext_lazy("Brief"), max_length=5000, widget=forms.Textarea(attrs={"rows": 4}))
    submissions_close_at = forms.DateTimeField(
        label=gettext_lazy("Submissions close"), input_formats=LOCAL_INPUT,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"))
    scoring_closes_at = forms.DateTimeField(
        label=gettext_lazy("Scoring closes"), input_formats=LOCAL_INPUT,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"))
    royalty_percent = forms.DecimalField(label=gettext_lazy("Designer royalty (percent of each unit's margin)"),
                                         min_value=Decimal("0.01"), max_value=100, decimal_places=2, initial=10)
    terms = forms.CharField(label=gettext_lazy("Terms"), max_length=3000, required=False,
                            widget=forms.Textarea(attrs={"rows": 3}))
    public = forms.BooleanField(label=gettext_lazy("Anyone may see the call and its share page"), required=False,
                                initial=True)


class SelectForm(forms.Form):
    """The organisers' terms for producing a chosen design; one form per design (prefixed)."""

    unit_cost = forms.IntegerField(label=gettext_lazy("Unit cost"), min_value=0)
    floor_price = forms.IntegerField(label=gettext_lazy("Lowest sale price"), min_value=1)
    low_stock_threshold = forms.IntegerField(label=gettext_lazy("Low-stock alert at"), min_value=0, initial=5)
    community_fund_percent = forms.DecimalField(label=gettext_lazy("Community fund (percent of each unit's margin)"),
                                                min_value=0, max_value=100, decimal_places=2, initial=0)
    production_manager = forms.ModelChoiceField(label=gettext_lazy("Production manager"), queryset=None,
                                                required=False, empty_label=gettext_lazy("All organisers"))

    def __init__(self, *args, community=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["production_manager"].queryset = get_user_model().objects.filter(
            memberships__community=community, memberships__role="organiser").order_by("pk")
        self.fields["production_manager"].label_from_instance = lambda person: person.name


def _error_text(error: DomainError) -> str:
    return "; ".join([error.message, *[m for ms in error.field_errors.values() for m in ms]])


def _call(request, slug: str, call_id: int) -> DesignCall:
    call = DesignCall.objects.select_related("community").filter(community__slug=slug, pk=call_id).first()
    if call is None or not (call.public or role_of(request.user, call.community) is not None):
        raise NotFound(_("No such design call."))
    return call


def call_page(request, slug: str, call_id: int, bound: SelectForm | None = None, bound_id: int | None = None,
              status: int = 200):
    call = _call(request, slug, call_id)
    now = timezone.now()
    member = role_of(request.user, call.community) is not None
    organiser = market_permissions.is_organiser(request.user, call.community)
    designs = services.ranked(call) if organiser and now >= call.submissions_close_at else list(
        call.designs.select_related("designer").prefetch_related("variants").order_by("pk"))
    if organiser and now >= call.submissions_close_at:
        for design in designs:
            if design.status != Design.Status.SELECTED:
                design.select_form = bound if design.pk == bound_id else SelectForm(
                    prefix=f"d{design.pk}", community=call.community)
    return render(request, "cocreation/design_call.html", {
        "call": call, "community": call.community, "designs": designs, "member": member, "organiser": organiser,
        "submitting": now < call.submissions_close_at, "scoring": call.submissions_close_at <= now < call.scoring_closes_at,
        "image_url": next((d.image.url for d in designs if d.image), ""),
    }, status=status)


def calls(request, slug: str):
    """The community's design calls, newest first; organisers open new ones here."""
    community = Community.objects.filter(slug=slug).first()
    member = community is not None and role_of(request.user, community) is not None
    if community is None:
        raise NotFound(_("No such community."))
    found = DesignCall.objects.filter(community=community).order_by("-pk")
    if not member:
        found = found.filter(public=True)
    return render(request, "cocreation/design_calls.html", {
        "community": community, "calls": found[:100], "now": timezone.now(),
        "organiser": market_permissions.is_organiser(request.user, community)})


@login_required
def call_new(request, slug: str):
    community = Community.objects.filter(slug=slug).first()
    if community is None or not market_permissions.is_organiser(request.user, community):
        raise NotFound(_("No such community."))
    with timezone.override(community.time_zone):
        form = CallForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                call = services.open_call(
                    actor=request.user, community=community, title=data["title"], brief=data["brief"],
                    submissions_close_at=data["submissions_close_at"], scoring_closes_at=data["scoring_closes_at"],
                    royalty_bp=_percent_to_bp(data["royalty_percent"]), terms=data["terms"], public=data["public"])
            except DomainError as error:
                add_domain_error(form, _rename(error, {"royalty_bp": "royalty_percent"}))
            else:
                messages.success(request, _("The call is open. Share its page to invite designs."))
                return redirect("cocreation:design_call", slug=slug, call_id=call.pk)
        return render(request, "cocreation/design_call_form.html", {"community": community, "form": form},
                      status=422 if request.method == "POST" else 200)


def _rename(error: DomainError, names: dict[str, str]) -> DomainError:
    """Service field names that differ from the form's (basis points behind a percent field)."""
    error.field_errors = {names.get(k, k): v for k, v in error.field_errors.items()}
    return error


@login_required
@require_POST
def call_close(request, slug: str, call_id: int):
    call = _call(request, slug, call_id)
    try:
        call = services.close_phase(actor=request.user, call=call)
        messages.success(request, _("Scoring is open now.") if timezone.now() < call.scoring_closes_at
                         else _("Scoring is closed; the results are final."))
    except DomainError as error:
        if isinstance(error, NotFound):
            raise
        messages.error(request, _error_text(error))
    return redirect("cocreation:design_call", slug=slug, call_id=call_id)


@login_required
@require_POST
def select(request, slug: str, call_id: int, design_id: int):
    """Step 3: choose a design; its designer gets the production right on the new product."""
    call = _call(request, slug, call_id)
    design = call.designs.filter(pk=design_id).first()
    if design is None or not market_permissions.is_organiser(request.user, call.community):
        raise NotFound(_("No such design."))
    form = SelectForm(request.POST, prefix=f"d{design.pk}", community=call.community)
    if form.is_valid():
        data = form.cleaned_data
        try:
            product = services.select_design(
                actor=request.user, design=design, unit_cost=data["unit_cost"], floor_price=data["floor_price"],
                low_stock_threshold=data["low_stock_threshold"], production_manager=data["production_manager"],
                community_fund_bp=_percent_to_bp(data["community_fund_percent"]))
        except DomainError as error:
            if isinstance(error, NotFound):
                raise
            add_domain_error(form, _rename(error, {"community_fund_bp": "community_fund_percent",
                                                   "royalty_bp": "community_fund_percent"}))
        else:
            messages.success(request, _("%(title)s is chosen; its designer may now plan production.") % {
                "title": design.title})
            return redirect("cocreation:production", slug=slug, product_id=product.pk)
    return call_page(request, slug, call_id, bound=form, bound_id=design.pk, status=422)


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
    orders = list(ProductionOrder.objects.filter(product=product).select_related("plan").prefetch_related(
        "updates", "plan__lines__variant").order_by("-pk"))
    labels = dict(ProductionOrder.Status.choices)
    for order in orders:
        position = services.STEPS.index(order.status)
        order.next_status = services.STEPS[position + 1] if position + 1 < len(services.STEPS) else None
        for update in order.updates.all():
            update.label = labels.get(update.status, update.status)
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
