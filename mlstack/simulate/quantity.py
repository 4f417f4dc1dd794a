"""Kubernetes resource quantities (``"250m"``, ``"12Gi"``, ``0.5``) as exact numbers, and resource lists.

Suffixes follow apimachinery's ``resource.Quantity`` (kubernetes/apimachinery pkg/api/resource/suffix.go): binary
``Ki Mi Gi Ti Pi Ei``, decimal ``n u m "" k M G T P E`` and exponents ``1e3``. Values are kept as
:class:`fractions.Fraction`, so ``"100m" * 3 == "300m"`` holds exactly, as it does in the API server.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+|[A-Za-z]*)$")

Resources = dict[str, Fraction]


class BadQuantity(ValueError):
    """A value that is not a Kubernetes quantity."""


def parse(value: Any) -> Fraction:
    """One quantity as an exact number (cores for cpu, bytes for memory, a count for the rest)."""
    if isinstance(value, bool):
        raise BadQuantity(f"{value!r} is not a quantity")
    if isinstance(value, Fraction):
        return value
    if isinstance(value, int | float):
        return Fraction(str(value))
    match = _QUANTITY.match(str(value).strip())
    if not match:
        raise BadQuantity(f"{value!r} is not a quantity")
    number, suffix = Fraction(match.group(1)), match.group(2)
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    if suffix[:1] in ("e", "E"):
        return number * Fraction(10) ** int(suffix[1:])
    raise BadQuantity(f"{value!r} has an unknown suffix {suffix!r}")


def resource_list(values: Mapping[str, Any] | None) -> Resources:
    """A ``requests``/``limits``/``hard`` map parsed (an unparseable value raises :class:`BadQuantity`)."""
    return {str(name): parse(amount) for name, amount in (values or {}).items()}


def add(total: Resources, more: Mapping[str, Fraction], times: int | Fraction = 1) -> Resources:
    """``total`` plus ``more`` times ``times``, as a new map."""
    out = dict(total)
    for name, amount in more.items():
        out[name] = out.get(name, Fraction(0)) + amount * times
    return out


def total(items: Iterable[Mapping[str, Fraction]]) -> Resources:
    out: Resources = {}
    for item in items:
        out = add(out, item)
    return out


def show(name: str, amount: Fraction) -> str:
    """A quantity as a reader writes it: millicores for cpu, Mi for memory, a plain number otherwise."""
    if name in ("cpu", "requests.cpu", "limits.cpu"):
        millis = amount * 1000
        return f"{int(millis)}m" if millis.denominator == 1 else f"{float(amount):.3f}"
    if name.endswith("memory") or name.endswith("storage"):
        mib = amount / 2**20
        return f"{int(mib)}Mi" if mib.denominator == 1 else f"{float(mib):.1f}Mi"
    return str(int(amount)) if amount.denominator == 1 else str(float(amount))
