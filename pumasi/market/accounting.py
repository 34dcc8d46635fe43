"""The shop's money in the cooperative ledger, only through its public services.

Accounts (per community and currency):
  cash            the bank account buyers transfer to (ledger standard account)
  shop:escrow     paid but not yet delivered (an escrow: it can never pay out more than it holds)
  shop:sales      where paid money lands when the shop books it as income at once
  shop:production production cost recovered, per unit sold
  shop:fund       the community fund's share
  shop:margin     what is left for the community/company after the shares
  platform        the intermediary's share (capped by the ledger's community setting)
  member:<id>     what the community owes the designer (their royalty), paid out by settlement

A payment is one transaction (cash → escrow or sales); the sale's revenue is a second one
(escrow or sales → the product's split rule), made at once or on delivery. A refund reverses
exactly those transactions, newest first.
"""

from __future__ import annotations

from collections import defaultdict

from django.utils.translation import gettext as _

from pumasi.ledger import services as ledger
from pumasi.ledger.models import SplitRule, Transaction


def platform_cap_bp(community) -> int:
    return ledger.settings_for(community).platform_cap_bp


def _account(community, code: str, currency: str):
    names = {
        "shop:escrow": (_("Shop escrow (paid, not yet delivered)"), "liability", "escrow"),
        "shop:sales": (_("Shop sales"), "income", "community"),
        "shop:production": (_("Production cost recovered"), "income", "community"),
        "shop:fund": (_("Community fund"), "equity", "community"),
        "shop:margin": (_("Shop margin"), "income", "community"),
    }
    name, type_, owner = names[code]
    return ledger.ensure_account(community=community, code=code, name=name, type=type_, owner_kind=owner,
                                 currency=currency)


def _shares(product, *, platform_bp: int) -> tuple[list[dict], object]:
    community, currency = product.community, product.currency
    shares: list[dict] = []
    if product.unit_cost > 0:
        shares.append({"account": _account(community, "shop:production", currency), "fixed_amount": product.unit_cost})
    shares.append({"account": ledger.member_account(community=community, user=product.designer, currency=currency),
                   "basis_points": product.royalty_bp})
    if product.community_fund_bp:
        shares.append({"account": _account(community, "shop:fund", currency), "basis_points": product.community_fund_bp})
    if platform_bp:
        shares.append({"account": ledger.standard_account(community=community, key="platform", currency=currency),
                       "basis_points": platform_bp})
    return shares, _account(community, "shop:margin", currency)


def create_product_rule(*, actor, product, platform_bp: int) -> SplitRule:
    """Per unit sold: the unit cost to production, then of the rest the designer's royalty, the
    community fund and the platform's share in basis points; what is left is the shop's margin."""
    shares, margin = _shares(product, platform_bp=platform_bp)
    return ledger.create_split_rule(
        actor=actor, community=product.community, name=f"Shop #{product.pk}: {product.title}"[:120], shares=shares,
        remainder="to_account", remainder_account=margin, currency=product.currency,
        note=_("Revenue split of each unit of %(title)s") % {"title": product.title},
    )


def revise_product_rule(*, actor, product, platform_bp: int) -> None:
    if product.split_rule_id is None:
        return
    shares, margin = _shares(product, platform_bp=platform_bp)
    ledger.revise_split_rule(actor=actor, rule=product.split_rule, shares=shares, remainder="to_account",
                             remainder_account=margin, note=_("Unit cost changed"))


def split_of(product, lines) -> list[tuple[object, int]]:
    """What each account gets from these order lines: the product's rule applied per unit at the
    price paid, times the quantity, so the parts add up to the total exactly."""
    totals: dict[int, int] = defaultdict(int)
    accounts: dict[int, object] = {}
    for line in lines:
        for account, part in ledger.allocate(int(line.unit_price), product.split_rule):
            totals[account.pk] += part * line.quantity
            accounts[account.pk] = account
    return [(accounts[pk], amount) for pk, amount in totals.items() if amount]


def book_payment(*, order, actor, destination: str, occurred_at=None) -> int:
    community = order.community
    target = _account(community, "shop:escrow" if destination == "escrow" else "shop:sales", order.currency)
    cash = ledger.standard_account(community=community, key="cash", currency=order.currency)
    tx = ledger.post_transaction(
        community=community, actor=actor, idempotency_key=f"market:order:{order.pk}:payment", kind="sale",
        memo=_("Payment for order %(number)s (%(title)s)") % {"number": order.number, "title": order.product.title},
        postings=[(cash, order.total), (target, -order.total)],
        reference={"market_order": order.number, "destination": destination}, occurred_at=occurred_at,
    )
    return tx.pk


def recognise_revenue(*, order, actor, source: str, occurred_at=None) -> int:
    """Move the order's money from escrow (or sales) into the split: royalty, cost, fund, platform."""
    community = order.community
    product = order.product
    origin = _account(community, "shop:escrow" if source == "escrow" else "shop:sales", order.currency)
    parts = split_of(product, list(order.lines.all()))
    units = sum(line.quantity for line in order.lines.all())
    tx = ledger.post_transaction(
        community=community, actor=actor, idempotency_key=f"market:order:{order.pk}:revenue", kind="split",
        memo=_("Sale of %(units)s × %(title)s, order %(number)s") % {
            "units": units, "title": product.title, "number": order.number},
        postings=[(origin, order.total), *[(account, -amount) for account, amount in parts]],
        reference={"market_order": order.number, "product": product.pk, "units": units}, occurred_at=occurred_at,
    )
    return tx.pk


def reverse(*, order, tx_id: int, actor, what: str) -> int:
    original = Transaction.objects.get(pk=tx_id, community=order.community)
    tx = ledger.reverse_transaction(
        actor=actor, transaction=original, idempotency_key=f"market:order:{order.pk}:{what}:refund",
        memo=_("Refund of order %(number)s (%(what)s)") % {"number": order.number, "what": what},
    )
    return tx.pk
