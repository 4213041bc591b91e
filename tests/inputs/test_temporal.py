"""Day-of-week features and EUROCONTROL flight counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aprior.errors import InputFileError
from aprior.inputs.temporal import (
    STUDY_COUNTRIES,
    day_of_week_features,
    read_flights,
    temporal_indicators,
    write_flights_csv,
)

DATES = np.arange("2023-01-02", "2023-01-16", dtype="datetime64[D]")  # starts on a Monday


def _write(tmp_path):
    n = DATES.size
    counts = {"France": np.arange(n) * 10 + 100, "Germany": np.full(n, 50),
              "United Kingdom": np.full(n, 7), "Poland": np.full(n, 10_000)}
    return write_flights_csv(tmp_path / "airport_traffic.csv", DATES, counts), counts


def test_flights_aggregated_over_study_countries(tmp_path):
    path, counts = _write(tmp_path)
    df = pd.read_csv(path)
    assert {"YEAR", "MONTH_NUM", "FLT_DATE", "STATE_NAME", "FLT_DEP_1", "FLT_ARR_1",
            "FLT_TOT_1"} <= set(df.columns)
    s = read_flights(path)
    assert len(STUDY_COUNTRIES) == 9
    np.testing.assert_array_equal(s.index.to_numpy(), DATES.astype("datetime64[ns]"))
    np.testing.assert_array_equal(s.to_numpy(), counts["France"] + 57)  # Poland excluded
    only_fr = read_flights(path, ["France"])
    np.testing.assert_array_equal(only_fr.to_numpy(), counts["France"])


def test_dep_plus_arr_when_total_missing(tmp_path):
    path, counts = _write(tmp_path)
    pd.read_csv(path).drop(columns=["FLT_TOT_1"]).to_csv(path, index=False)
    np.testing.assert_array_equal(read_flights(path, ["Germany"]).to_numpy(), 50)


@pytest.mark.parametrize("case", ["column", "countries", "negative", "empty"])
def test_flights_refuse(tmp_path, case):
    path, _ = _write(tmp_path)
    df = pd.read_csv(path)
    if case == "column":
        df.drop(columns=["STATE_NAME"]).to_csv(path, index=False)
        match = "STATE_NAME"
    elif case == "countries":
        df[df.STATE_NAME == "Poland"].to_csv(path, index=False)
        match = "none of the countries"
    elif case == "negative":
        df.loc[0, "FLT_TOT_1"] = -3
        df.to_csv(path, index=False)
        match = "negative"
    else:
        path.write_text("")
        match = "empty"
    with pytest.raises(InputFileError, match=match) as err:
        read_flights(path)
    assert err.value.path == str(path)


def test_day_of_week_and_indicators(tmp_path):
    f = day_of_week_features(DATES[:7])
    np.testing.assert_allclose(f[0], [0.0, 1.0], atol=1e-12)  # Monday
    np.testing.assert_allclose(f[:, 0] ** 2 + f[:, 1] ** 2, 1.0)
    np.testing.assert_allclose(day_of_week_features(DATES[7:]), f, atol=1e-12)  # weekly
    path, _ = _write(tmp_path)
    s = read_flights(path)
    ind = temporal_indicators(DATES, s)
    assert ind.shape == (DATES.size, 3)
    assert ind[:, 2].mean() == pytest.approx(0.0, abs=1e-12)
    assert ind[:, 2].std(ddof=1) == pytest.approx(1.0)
    fixed = temporal_indicators(DATES[:2], s, flight_stats=(157.0, 10.0))
    np.testing.assert_allclose(fixed[:, 2], [0.0, 1.0])
    with pytest.raises(InputFileError, match="no flight count for 2023-02-01"):
        temporal_indicators(np.array(["2023-02-01"], dtype="datetime64[D]"), s)
