"""Kubernetes quantities (webhook.k8s.quantity), parsed and rounded as apimachinery's resource.Quantity does."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from webhook.k8s import quantity


@pytest.mark.parametrize(
    ("text", "val", "milli", "whole"),
    [
        ("2", 2, 2000, True),
        ("500m", 1, 500, False),
        ("800m", 1, 800, False),
        ("1500m", 2, 1500, False),
        ("0.5", 1, 500, False),
        ("2000m", 2, 2000, True),
        ("2Gi", 2147483648, 2147483648000, True),
        ("1e3", 1000, 1000000, True),
        (3, 3, 3000, True),
        (0.25, 1, 250, False),
    ],
)
def test_quantity_value_rounds_up_like_apimachinery(text: Any, val: int, milli: int, whole: bool) -> None:
    q = quantity.parse(text)
    assert (quantity.value(q), quantity.milli_value(q), quantity.is_whole(q)) == (val, milli, whole)


@pytest.mark.parametrize(
    "bad", ["NaN", "Infinity", " 2 ", "1_000", "1ki", "2^70", "", "1e400", "1K", True, None, [], {}, float("inf")]
)
def test_quantity_rejects_what_the_api_server_rejects(bad: Any) -> None:
    with pytest.raises(quantity.QuantityError):
        quantity.parse(bad)


def test_quantity_negative_values_round_away_from_zero() -> None:
    assert quantity.value(Decimal("-1.5")) == -2
    assert quantity.parse("-0") == 0


def test_quantity_ei_suffix_is_two_to_the_sixtieth() -> None:
    assert quantity.value(quantity.parse("1Ei")) == 2**60
    assert quantity.value(quantity.parse("2Pi")) == 2**51


def test_quantity_length_cap_is_64_characters() -> None:
    at_cap = "0" * 63 + "1"
    assert quantity.parse(at_cap) == 1
    over = "0" * 64 + "1"
    with pytest.raises(quantity.QuantityError) as err:
        quantity.parse(over)
    assert str(err.value).startswith(repr("0" * 64) + " is not a quantity")


@pytest.mark.parametrize(
    ("text", "ok"), [("1e21", True), ("9e21", True), ("1e22", False), ("1e-18", True), ("1e-19", False)]
)
def test_quantity_exponent_range_edges(text: str, ok: bool) -> None:
    if ok:
        assert quantity.parse(text) == Decimal(text)
    else:
        with pytest.raises(quantity.QuantityError, match="out of range: quantities must lie between 1e-18 and 1e21"):
            quantity.parse(text)


def test_quantity_zero_with_a_tiny_exponent_is_zero() -> None:
    assert quantity.parse("0e-30") == 0
    assert quantity.value(quantity.parse("0e-30")) == 0


def test_quantity_negative_fractions_round_away_from_zero() -> None:
    q = quantity.parse("-1.2")
    assert (quantity.value(q), quantity.milli_value(q), quantity.is_whole(q)) == (-2, -1200, False)
    assert quantity.value(quantity.parse("-2")) == -2


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (True, "bool value is not a quantity: use a string such as '2' or '500m'"),
        (None, "NoneType value is not a quantity: use a string such as '2' or '500m'"),
        ([], "list value is not a quantity: use a string such as '2' or '500m'"),
        ({}, "dict value is not a quantity: use a string such as '2' or '500m'"),
        (float("nan"), "nan is not a finite quantity"),
        (float("-inf"), "-inf is not a finite quantity"),
        ("1K", "'1K' is not a quantity: use a number with an optional suffix, e.g. 2, 500m, 4Gi"),
    ],
)
def test_quantity_errors_name_the_json_type(raw: Any, message: str) -> None:
    with pytest.raises(quantity.QuantityError) as err:
        quantity.parse(raw)
    assert str(err.value) == message


def test_quantity_json_numbers_parse_as_their_text() -> None:
    assert quantity.parse(2) == 2
    assert quantity.parse(1.5) == Decimal("1.5")
    assert quantity.parse(-0.001) == Decimal("-0.001")
    assert quantity.try_parse(None) is None
    assert quantity.try_parse("x") is None
    assert quantity.try_parse("0") == 0
