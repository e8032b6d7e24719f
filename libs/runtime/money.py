"""Minor units as decimal amounts, exactly: ``12345`` CNY is ``123.45``, ``12345`` JPY is ``12345``.

How many decimals a currency has is ISO 4217's "minor unit" column; most have
two, the few listed here have none or three. Conversion is integer arithmetic
into ``Decimal`` (a scaled integer), never a float.
"""

from __future__ import annotations

from decimal import Decimal

from libs.events.values import DEFAULT_CURRENCY

MINOR_UNITS: dict[str, int] = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX",
                     "UYI", "VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    "CLF": 4, "UYW": 4,
}
"""ISO 4217 currencies whose minor unit is not 2 (every other code has 2)."""


def minor_units(currency: str | None) -> int:
    """Decimals of ``currency`` (the system's default currency when none is given)."""
    return MINOR_UNITS.get((currency or DEFAULT_CURRENCY).upper(), 2)


def amount(minor: int, currency: str | None) -> Decimal:
    """``minor`` units of ``currency`` as an exact decimal amount with the currency's decimals."""
    return Decimal(minor).scaleb(-minor_units(currency))


def grouped(minor: int, currency: str | None) -> str:
    """The amount for people: ``1,234.56`` (thousands grouped, the currency's decimals)."""
    places = minor_units(currency)
    return f"{amount(minor, currency):,.{places}f}"
