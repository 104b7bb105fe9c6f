"""Bootstrap bands of the test-time-scaling curve, from per-problem rows."""

import pytest

from components import intervals
from components.metrics import scaling_curve, score_problems

BOX = "<think>\nx\n</think>\nThe answer is \\boxed{{{}}}."


def _rows(problems: int):
    """Problems whose 4 samples are right 0, 1, 2, 3 or 4 times, in turn."""
    samples = [[BOX.format(7 if j < i % 5 else j) for j in range(4)] for i in range(problems)]
    return score_problems([BOX.format(7)] * problems, samples, ["7"] * problems, ks=[1])[1]


def test_a_fair_coin_interval_is_the_textbook_one():
    low, high = intervals.bootstrap_interval([0.0, 1.0] * 200)
    half_width = 1.96 * (0.25 / 400) ** 0.5  # the normal approximation, which a bootstrap of 400 coins matches
    assert low == pytest.approx(0.5 - half_width, abs=0.01) and high == pytest.approx(0.5 + half_width, abs=0.01)
    assert intervals.bootstrap_interval([0.3] * 5) == (pytest.approx(0.3), pytest.approx(0.3))  # no spread, no width
    with pytest.raises(ValueError, match="no values"):
        intervals.bootstrap_interval([])


def test_bands_hold_the_curve_and_narrow_with_more_problems():
    rows = _rows(40)
    curve = scaling_curve(rows, 4)
    bands = intervals.scaling_bands(rows, curve["n"])
    assert set(bands) == set(curve) - {"n"}
    for name, band in bands.items():
        assert len(band) == len(curve["n"])
        for (low, high), point in zip(band, curve[name], strict=True):
            assert 0.0 <= low <= point <= high <= 1.0, (name, low, point, high)
    wide = intervals.scaling_bands(_rows(10), curve["n"])["maj@N"][0]
    narrow = intervals.scaling_bands(_rows(400), curve["n"])["maj@N"][0]
    assert narrow[1] - narrow[0] < wide[1] - wide[0]


def test_bands_are_reproducible():
    rows = _rows(20)
    assert intervals.scaling_bands(rows, [1, 2, 4]) == intervals.scaling_bands(rows, [1, 2, 4])
