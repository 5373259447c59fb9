"""Kubernetes resource quantities with apimachinery semantics.

``kubernetes.utils.parse_quantity`` does the arithmetic but is more lenient than the API server (it takes
"NaN", "Infinity", " 2 ", "1_000"); a regex taken from the quantity pattern in KubeVirt's CRDs guards it,
so anything the API server would refuse is refused here too, as :class:`QuantityError`.
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_CEILING, Decimal
from functools import lru_cache
from typing import Any

from kubernetes.utils.quantity import parse_quantity

_QUANTITY_RE = re.compile(
    r"^[+-]?((\d+(\.\d*)?)|(\.\d+))(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?((\d+(\.\d*)?)|(\.\d+))))?$",
    re.ASCII,
)
_MAX_LEN = 64
# apimachinery keeps quantities as int64 scaled values (about 9.2e18); anything far outside is absurd input.
_MAX_EXP = 21
_MIN_EXP = -18


class QuantityError(ValueError):
    """A value that is not a Kubernetes quantity."""


@lru_cache(maxsize=4096)
def _parse_str(text: str) -> Decimal:
    if len(text) > _MAX_LEN or not _QUANTITY_RE.match(text):
        raise QuantityError(
            f"{text[:_MAX_LEN]!r} is not a quantity: use a number with an optional suffix, e.g. 2, 500m, 4Gi"
        )
    try:
        # untyped with kubernetes installed; Any in an isolated build (setup.py), where it is not
        value: Decimal = parse_quantity(text)  # type: ignore[no-untyped-call, unused-ignore]
    except (ValueError, ArithmeticError) as exc:  # unreachable behind the regex; kept as a guard
        raise QuantityError(f"{text!r} is not a quantity: {exc}") from exc
    if not value.is_finite():
        raise QuantityError(f"{text!r} is not a finite quantity")
    if value and not _MIN_EXP <= value.adjusted() <= _MAX_EXP:
        raise QuantityError(f"{text!r} is out of range: quantities must lie between 1e{_MIN_EXP} and 1e{_MAX_EXP}")
    return value


def parse(raw: Any) -> Decimal:
    """Parse a quantity as the API server would decode it from JSON (string, or a JSON number)."""
    if isinstance(raw, str):
        return _parse_str(raw)
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise QuantityError(f"{type(raw).__name__} value is not a quantity: use a string such as '2' or '500m'")
    if isinstance(raw, float) and not math.isfinite(raw):
        raise QuantityError(f"{raw!r} is not a finite quantity")
    # A JSON number reaches the API server as its text; repr() is the shortest text of the float.
    return _parse_str(repr(raw) if isinstance(raw, float) else str(raw))


def value(q: Decimal) -> int:
    """apimachinery ``Value()``: rounded up (away from zero) to an integer."""
    return int(q.to_integral_value(ROUND_CEILING)) if q >= 0 else -int((-q).to_integral_value(ROUND_CEILING))


def milli_value(q: Decimal) -> int:
    """apimachinery ``MilliValue()``: ``q * 1000`` rounded up (away from zero)."""
    return value(q * 1000)


def is_whole(q: Decimal) -> bool:
    """True when ``Value()*1000 == MilliValue()``: the CPU manager's and KubeVirt's test for whole CPUs."""
    return value(q) * 1000 == milli_value(q)


def try_parse(raw: Any) -> Decimal | None:
    """Parse, or ``None`` when ``raw`` is absent or invalid (callers that report errors use :func:`parse`)."""
    if raw is None:
        return None
    try:
        return parse(raw)
    except QuantityError:
        return None
