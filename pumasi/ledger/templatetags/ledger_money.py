"""{{ amount|money:currency }} — minor units shown the way people read money."""

from django import template

from pumasi.ledger.money import format_amount

register = template.Library()


@register.filter
def money(amount, currency):
    if amount is None:
        return ""
    return format_amount(int(amount), currency)


@register.filter
def negate(amount):
    return -int(amount or 0)
