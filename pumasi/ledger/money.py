"""Money in minor units: the currency exponent table, parsing typed amounts, formatting."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.utils.translation import gettext as _

from pumasi.core.errors import InvalidInput

# ISO 4217 exponents: how many minor units make one major unit (10 ** exponent).
EXPONENTS: dict[str, int] = {
    "KRW": 0, "JPY": 0, "USD": 2, "EUR": 2, "GBP": 2, "CNY": 2, "CHF": 2, "CAD": 2, "AUD": 2,
    "SGD": 2, "HKD": 2, "TWD": 2, "VND": 0, "KWD": 3, "BHD": 3,
}
SYMBOLS = {"KRW": "₩", "JPY": "¥", "USD": "$", "EUR": "€", "GBP": "£", "CNY": "CN¥"}
# The largest amount one posting may carry: far above any community's money, far below 2**63.
MAX_AMOUNT = 10**15


def exponent(currency: str) -> int:
    if currency not in EXPONENTS:
        raise InvalidInput(
            _("Unknown currency %(code)s.") % {"code": currency},
            field_errors={"currency": [_("Choose one of: %(codes)s.") % {"codes": ", ".join(sorted(EXPONENTS))}]},
        )
    return EXPONENTS[currency]


def check_currency(currency: str, field: str = "currency") -> dict[str, list[str]]:
    if currency not in EXPONENTS:
        return {field: [_("Unknown currency %(code)s; choose one of: %(codes)s.") % {
            "code": currency, "codes": ", ".join(sorted(EXPONENTS))}]}
    return {}


def parse_amount(text: str | int, currency: str, *, field: str = "amount") -> int:
    """A typed amount in major units ("12,000" won, "12.34" dollars) as integer minor units.

    A fraction finer than the currency's minor unit (half a won) is refused, never rounded.
    """
    exp = exponent(currency)
    raw = str(text).strip().replace(",", "").replace("_", "")
    for symbol in SYMBOLS.values():
        raw = raw.replace(symbol, "")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise InvalidInput(_("The amount is not a number."), field_errors={field: [_("Give a number such as 12000.")]}) from None
    if not value.is_finite():
        raise InvalidInput(_("The amount is not a number."), field_errors={field: [_("Give a number such as 12000.")]})
    minor = value * (10**exp)
    if minor != minor.to_integral_value():
        message = (_("%(code)s has no minor unit: give a whole amount.") % {"code": currency} if exp == 0 else
                   _("%(code)s has %(n)d decimal places at most.") % {"code": currency, "n": exp})
        raise InvalidInput(message, field_errors={field: [message]})
    minor_int = int(minor)
    if abs(minor_int) > MAX_AMOUNT:
        raise InvalidInput(_("The amount is too large."), field_errors={field: [_("The amount is too large.")]})
    return minor_int


def to_major(amount: int, currency: str) -> Decimal:
    exp = EXPONENTS.get(currency, 0)
    return (Decimal(amount) / (10**exp)).quantize(Decimal(1).scaleb(-exp)) if exp else Decimal(amount)


def major_str(amount: int, currency: str) -> str:
    """Plain major-unit text without grouping ("-12.34", "12000"), as CSV and Beancount want it."""
    return str(to_major(amount, currency))


def format_amount(amount: int, currency: str) -> str:
    """For people: "₩12,000", "$12.34", "-€1.50"."""
    exp = EXPONENTS.get(currency, 0)
    value = to_major(abs(amount), currency)
    body = f"{value:,.{exp}f}"
    sign = "-" if amount < 0 else ""
    symbol = SYMBOLS.get(currency)
    return f"{sign}{symbol}{body}" if symbol else f"{sign}{body} {currency}"
