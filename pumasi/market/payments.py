"""Payment providers of the shop: one interface, one real implementation usable without any
outside service (a bank transfer that an organiser confirms once the money is on the account).

A provider starts a payment (what the buyer must do) and confirms it; the shop then books the
money in the ledger. Card or wallet providers would implement the same two calls.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Protocol

from django.utils.translation import gettext as _

from pumasi.core.errors import Conflict, InvalidInput
from pumasi.market import permissions
from pumasi.market.models import Order, Payment


@dataclass
class Instructions:
    """What the buyer is told to do to pay."""

    provider: str
    reference: str
    text: str


class PaymentProvider(Protocol):
    name: str

    def start(self, *, order: Order) -> tuple[Payment, Instructions]:
        """Create the order's payment record (in the caller's transaction) and say how to pay."""

    def check_confirmation(self, *, actor, payment: Payment, evidence: dict) -> None:
        """Raise unless this actor, with this evidence, may declare the payment received."""


class BankTransfer:
    """The buyer transfers the total to the community's account quoting a reference; an
    organiser who sees the transfer on the statement confirms it with the amount received."""

    name = "bank_transfer"

    def start(self, *, order: Order) -> tuple[Payment, Instructions]:
        reference = f"PM{secrets.token_hex(4).upper()}"
        payment = Payment.objects.create(
            order=order, provider=self.name, reference=reference, amount=order.total, currency=order.currency,
        )
        return payment, self.instructions(payment)

    def instructions(self, payment: Payment) -> Instructions:
        account = permissions.shop_settings(payment.order.community).bank_account or _("the community's bank account")
        from pumasi.ledger.money import format_amount

        text = _("Transfer %(amount)s to %(account)s and write %(reference)s as the transfer message.") % {
            "amount": format_amount(payment.amount, payment.currency), "account": account, "reference": payment.reference,
        }
        return Instructions(provider=self.name, reference=payment.reference, text=text)

    def check_confirmation(self, *, actor, payment: Payment, evidence: dict) -> None:
        permissions.require_organiser(actor, payment.order.community)
        received = evidence.get("amount_received")
        if received is None:
            raise InvalidInput(_("Say how much arrived on the account."),
                               field_errors={"amount_received": [_("Give the amount that arrived.")]})
        if int(received) != payment.amount:
            raise Conflict(
                _("%(received)s arrived but the order needs %(amount)s; settle the difference with the buyer first.") % {
                    "received": received, "amount": payment.amount},
                code="amount_mismatch",
            )


PROVIDERS: dict[str, PaymentProvider] = {BankTransfer.name: BankTransfer()}


def provider(name: str) -> PaymentProvider:
    if name not in PROVIDERS:
        raise InvalidInput(_("Unknown payment method."),
                           field_errors={"payment_method": [_("Choose one of: %(names)s.") % {"names": ", ".join(PROVIDERS)}]})
    return PROVIDERS[name]
