"""Ledger pages under c/<slug>/ledger/: transparency, accounts, transactions, split rules, statements,
escrows, pools. Each view parses, asks the permission module, calls a service, renders."""

from __future__ import annotations

import csv
import secrets
from datetime import timedelta

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from pumasi.communities.models import Community
from pumasi.core.errors import DomainError, NotFound
from pumasi.core.forms import add_domain_error
from pumasi.ledger import permissions, selectors, services, tasks
from pumasi.ledger.models import Pool
from pumasi.ledger.money import format_amount, major_str, parse_amount


def _community(request, slug: str, action: str):
    community = Community.objects.filter(slug=slug).first()
    if community is None:
        raise Http404(_("No such community."))
    try:
        permissions.require(request.user, action, community)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    return community


def _refuse(request, error: DomainError) -> None:
    if isinstance(error, NotFound):
        raise Http404(error.message)
    details = " ".join(" ".join(v) for v in error.field_errors.values())
    messages.error(request, f"{error.message} {details}".strip())


def _ctx(request, community, **extra):
    return {"community": community, "may_manage": permissions.can(request.user, "manage", community),
            "may_books": permissions.can(request.user, "view_books", community), **extra}


def transparency(request, slug: str):
    community = Community.objects.filter(slug=slug).first()
    if community is None or not permissions.may_see_public_totals(request.user, community):
        raise Http404(_("No such community."))
    today = timezone.localdate()
    period = request.GET.get("period") or f"{today:%Y-%m}"
    try:
        start, end = services.parse_period(period)
    except DomainError as error:
        _refuse(request, error)
        period = f"{today:%Y-%m}"
        start, end = services.parse_period(period)
    member = permissions.can(request.user, "view_transparency", community)
    view = selectors.transparency(community, start, end, viewer=request.user if member else None,
                                  with_members=permissions.can(request.user, "view_books", community))
    previous = (start - timedelta(days=1)).strftime("%Y-%m")
    following = end.strftime("%Y-%m")
    owners = [(key, label, view.to_owner.get(key, 0)) for key, label in (
        ("member", _("Members")), ("community", _("The community")), ("pool", _("Mutual-aid pools")),
        ("platform", _("Platform / intermediary")), ("escrow", _("Escrow")), ("outside", _("Outside world")))]
    return render(request, "ledger/transparency.html", _ctx(
        request, community, view=view, period=period, previous=previous, following=following, member=member,
        owners=[(k, label, amount, round(100 * amount / view.income, 1) if view.income else None)
                for k, label, amount in owners if amount],
        rules=selectors.split_rules(community, include_retired=False) if member else [],
        cap=selectors.ledger_settings(community).platform_cap_bp / 100,
    ))


@login_required
def accounts(request, slug: str):
    community = _community(request, slug, "view_books")
    return render(request, "ledger/accounts.html", _ctx(request, community, accounts=selectors.accounts(community)))


@login_required
def transactions(request, slug: str):
    community = _community(request, slug, "view_books")
    account_id = request.GET.get("account")
    rows = selectors.transactions(community, int(account_id) if account_id and account_id.isdigit() else None)
    page = Paginator(rows.order_by("-seq"), 50).get_page(request.GET.get("page"))
    return render(request, "ledger/transactions.html", _ctx(request, community, page=page, account_id=account_id))


@login_required
def transaction_detail(request, slug: str, transaction_id: int):
    community = _community(request, slug, "view_books")
    try:
        tx = selectors.transaction(community, transaction_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    return render(request, "ledger/transaction.html", _ctx(request, community, tx=tx))


@login_required
def rules(request, slug: str):
    community = _community(request, slug, "view_transparency")
    return render(request, "ledger/rules.html", _ctx(
        request, community, rules=selectors.split_rules(community),
        cap=selectors.ledger_settings(community).platform_cap_bp / 100))


class SettleForm(forms.Form):
    period = forms.CharField(label=gettext_lazy("Period"), max_length=40,
                             help_text=gettext_lazy("A month (2026-03), a year (2026) or days (2026-03-01..2026-03-16)."))


@login_required
def statements(request, slug: str):
    community = _community(request, slug, "view_books")
    form = SettleForm(request.POST or None)
    if request.method == "POST":
        permissions.require(request.user, "manage", community)
        if form.is_valid():
            try:
                start, end = services.parse_period(form.cleaned_data["period"])
                tasks.settle_job(community.pk, request.user.pk, start.isoformat(), end.isoformat(), community.currency)
            except DomainError as error:
                add_domain_error(form, error)
            else:
                messages.success(request, _("The settlement was started; progress shows below."))
                return redirect("ledger:statements", slug)
    return render(request, "ledger/statements.html", _ctx(
        request, community, form=form, settlements=selectors.settlements(community)[:60]))


def _statement_rows(request, community, settlement_id: int):
    try:
        settlement = selectors.settlement(community, settlement_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    see_all = permissions.can(request.user, "manage", community)
    return settlement, list(selectors.statements(settlement, request.user, see_all))


@login_required
def statement_print(request, slug: str, settlement_id: int):
    community = _community(request, slug, "view_books")
    settlement, rows = _statement_rows(request, community, settlement_id)
    return render(request, "ledger/statement_print.html", _ctx(request, community, settlement=settlement, rows=rows))


@login_required
def statement_csv(request, slug: str, settlement_id: int):
    community = _community(request, slug, "view_books")
    settlement, rows = _statement_rows(request, community, settlement_id)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="{community.slug}-statements-{settlement.period_start}-{settlement.period_end}.csv"')
    response.write("\ufeff")  # spreadsheet programs read UTF-8 (Korean names) only with a BOM
    writer = csv.writer(response)
    writer.writerow(["member", "email", "date", "transaction", "memo", "amount", "currency", "line"])
    for statement in rows:
        for line in statement.lines.all():
            writer.writerow([statement.member.name, statement.member.email, line.posted_at.date().isoformat(),
                             line.transaction_id, line.memo, major_str(line.amount, settlement.currency),
                             settlement.currency, "earning"])
        writer.writerow([statement.member.name, statement.member.email, "", "", "total earned",
                         major_str(statement.earned, settlement.currency), settlement.currency, "total"])
        writer.writerow([statement.member.name, statement.member.email, "", statement.payout_id or "", "paid out",
                         major_str(statement.paid, settlement.currency), settlement.currency, "payout"])
    return response


class EscrowForm(forms.Form):
    seller = forms.ModelChoiceField(queryset=get_user_model().objects.none(), label=gettext_lazy("Seller"))
    moderator = forms.ModelChoiceField(queryset=get_user_model().objects.none(), label=gettext_lazy("Moderator"))
    amount = forms.CharField(label=gettext_lazy("Amount"), max_length=30)
    memo = forms.CharField(label=gettext_lazy("What for"), max_length=500, required=False)
    key = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, *args, community=None, **kwargs):
        super().__init__(*args, **kwargs)
        people = get_user_model().objects.filter(memberships__community=community).order_by("display_name")
        self.fields["seller"].queryset = people
        self.fields["moderator"].queryset = people.filter(memberships__role__in=["committee", "organiser"])
        self.fields["seller"].label_from_instance = lambda u: u.name
        self.fields["moderator"].label_from_instance = lambda u: u.name


@login_required
def escrows(request, slug: str):
    community = _community(request, slug, "view_books")
    form = EscrowForm(request.POST or None, community=community, initial={"key": secrets.token_urlsafe(12)})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.open_escrow(actor=request.user, community=community, seller=data["seller"],
                                 moderator=data["moderator"], amount=parse_amount(data["amount"], community.currency),
                                 idempotency_key=data["key"], memo=data["memo"])
        except DomainError as error:
            add_domain_error(form, error)
        else:
            messages.success(request, _("The payment is held in escrow."))
            return redirect("ledger:escrows", slug)
    rows = selectors.escrows(community, request.user, see_all=permissions.can(request.user, "manage", community))
    return render(request, "ledger/escrows.html", _ctx(request, community, form=form, escrows=rows[:100]))


@login_required
@require_POST
def escrow_action(request, slug: str, escrow_id: int):
    community = _community(request, slug, "view_books")
    action = request.POST.get("action")
    try:
        escrow = selectors.escrow(community, escrow_id)
        if action in ("release", "refund"):
            services.approve_escrow(actor=request.user, escrow=escrow, decision=action)
        elif action == "dispute":
            services.dispute_escrow(actor=request.user, escrow=escrow, reason=request.POST.get("reason", ""))
        elif action == "timeout_release":
            services.release_after_timeout(actor=request.user, escrow=escrow)
        else:
            raise Http404()
    except DomainError as error:
        _refuse(request, error)
    else:
        messages.success(request, _("Your decision was recorded."))
    return redirect("ledger:escrows", slug)


class PoolForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=120)
    contribution = forms.CharField(label=gettext_lazy("Monthly contribution"), max_length=30)
    claim_rule = forms.ChoiceField(label=gettext_lazy("Claims beyond the funds"), choices=Pool.ClaimRule.choices)
    year_end_rule = forms.ChoiceField(label=gettext_lazy("At year end"), choices=Pool.YearEndRule.choices)


@login_required
def pools(request, slug: str):
    community = _community(request, slug, "view_books")
    form = PoolForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.create_pool(actor=request.user, community=community, name=data["name"],
                                 contribution_amount=parse_amount(data["contribution"], community.currency),
                                 claim_rule=data["claim_rule"], year_end_rule=data["year_end_rule"])
        except DomainError as error:
            add_domain_error(form, error)
        else:
            messages.success(request, _("The pool was created."))
            return redirect("ledger:pools", slug)
    return render(request, "ledger/pools.html", _ctx(request, community, form=form, pools=selectors.pools(community)))


class ClaimForm(forms.Form):
    amount = forms.CharField(label=gettext_lazy("Amount"), max_length=30)
    description = forms.CharField(label=gettext_lazy("What happened"), max_length=1000, widget=forms.Textarea)
    evidence = forms.FileField(label=gettext_lazy("Evidence (PDF, PNG or JPEG, at most 5 MB)"))


@login_required
def pool_detail(request, slug: str, pool_id: int):
    community = _community(request, slug, "view_books")
    try:
        pool = selectors.pool(community, pool_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    form = ClaimForm(request.POST or None, request.FILES or None)
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "join":
                services.join_pool(actor=request.user, pool=pool)
                messages.success(request, _("You joined the pool."))
            elif action == "contribute":
                services.contribute(actor=request.user, pool=pool, month=request.POST.get("month", ""))
                messages.success(request, _("Your contribution was recorded."))
            elif action in ("approve", "reject"):
                claim = selectors.claim(pool, int(request.POST.get("claim", "0") or 0))
                services.decide_claim(actor=request.user, claim=claim, approve=action == "approve")
                messages.success(request, _("The claim was decided."))
            elif action == "year_end":
                services.close_pool_year(actor=request.user, pool=pool, year=int(request.POST.get("year", "0") or 0))
                messages.success(request, _("The year was closed."))
            elif action == "claim":
                if form.is_valid():
                    services.file_claim(actor=request.user, pool=pool,
                                        amount=parse_amount(form.cleaned_data["amount"], pool.currency),
                                        description=form.cleaned_data["description"],
                                        evidence=form.cleaned_data["evidence"])
                    messages.success(request, _("Your claim was filed."))
                else:
                    raise DomainError(_("The claim was not filed."))
            else:
                raise Http404()
        except DomainError as error:
            if action == "claim":
                add_domain_error(form, error)
            else:
                _refuse(request, error)
        else:
            return redirect("ledger:pool", slug, pool.pk)
    today = timezone.localdate()
    return render(request, "ledger/pool.html", _ctx(
        request, community, pool=pool, form=form, funds=services.pool_funds(pool),
        funds_text=format_amount(services.pool_funds(pool), pool.currency),
        joined=pool.members.filter(user=request.user).exists(), claims=pool.claims.select_related("claimant"),
        this_month=f"{today:%Y-%m}", last_year=today.year - 1, year_ends=pool.year_ends.order_by("-year"),
        contributions=pool.contributions.filter(user=request.user).order_by("-month")[:24],
    ))
