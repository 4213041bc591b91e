"""A daily-mean field (one time stamped 00:00 UTC) stands for any time of its own day."""

import numpy as np

from aprior.a_priori.field import time_coverage, time_coverage_gap


def _t(s: str) -> np.ndarray:
    return np.array([np.datetime64(s, "ns")])


def test_daily_mean_covers_the_afternoon_orbit_of_its_day():
    daily = _t("2023-01-13T00:00")
    assert time_coverage_gap(daily, _t("2023-01-13T12:40")) is None
    assert time_coverage_gap(daily, _t("2023-01-13T23:59")) is None
    lo, hi = time_coverage(daily)
    assert hi == np.datetime64("2023-01-14T00:00", "ns")
    # the next day's orbit is not its day
    gap = time_coverage_gap(daily, _t("2023-01-14T12:30"))
    assert gap == np.timedelta64(12 * 60 + 30, "m")


def test_noon_stamped_field_keeps_twelve_hours_each_side():
    noon = _t("2023-01-13T12:00")
    assert time_coverage_gap(noon, _t("2023-01-13T23:00")) is None
    assert time_coverage_gap(noon, _t("2023-01-14T01:00")) == np.timedelta64(1, "h")
    assert time_coverage_gap(None, _t("2030-01-01T00:00")) is None
