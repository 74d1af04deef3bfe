"""Changes and differences as people read them: pp for rates, a signed percent otherwise."""

import math

import pytest

from kpinb._numbers import DASH, format_change, format_delta


@pytest.mark.parametrize(
    ("new", "old", "unit", "shown"),
    [
        (0.055, 0.07, "percent", "-1.5 pp"),  # a change of a rate is in percentage points
        (110.0, 150.0, "currency", "-26.7%"),
        (95.0, 105.0, "count", "-9.5%"),
        (12.0, -10.0, "count", "+220.0%"),  # against the size of the old value
        (5.0, 0.0, "count", DASH),
        (math.nan, 1.0, "count", DASH),
    ],
)
def test_format_change(new, old, unit, shown):
    assert format_change(new, old, unit) == shown


@pytest.mark.parametrize(
    ("diff", "unit", "sign", "shown"),
    [
        (-0.013, "percent", True, "-1.3 pp"),
        (0.013, "percent", False, "1.3 pp"),
        (126.75, "currency", True, "+126.75"),
        (-2_500_000.0, "currency", True, "-2.50M"),
        (-5.0, "count", False, "5"),
        (0.0, "count", True, "0"),
        (math.inf, "count", True, DASH),
    ],
)
def test_format_delta(diff, unit, sign, shown):
    assert format_delta(diff, unit, sign=sign) == shown
