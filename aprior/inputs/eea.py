"""EEA air-quality NO2 station data: reading and writing the download-service layout.

Values: the EEA Air Quality Download Service (https://eeadmz1-downloads-webapp.azurewebsites.net/)
delivers one parquet file per sampling point with the columns

``Samplingpoint`` ("FR/SPO-FR04001_8_1": ISO2 country, "/", the sampling point id),
``Pollutant`` (8 = NO2; the vocabulary URL ".../pollutant/8" and "NO2" are accepted too),
``Start``, ``End`` (hour start/end), ``Value``, ``Unit`` ("ug.m-3"), ``AggType`` ("hour"),
``Validity`` (1, 2, 3 valid; -1, -99 invalid), ``Verification``, ``ResultTime``,
``DataCapture``, ``FkObservationLog``.

CSV files with the same columns are read too, and so are the legacy e-Reporting CSVs
(``SamplingPoint``, ``AirPollutantCode``, ``Concentration``, ``UnitOfMeasurement``,
``DatetimeBegin``, ``DatetimeEnd``, ``AveragingTime``, ``Validity``).

Time stamps without a zone are hourly values in UTC+1, the e-Reporting convention for
hourly data (``utc_offset_hours``); time stamps with a zone are converted to UTC. An hour
is labelled by its start, in UTC.

Metadata: the station/sampling-point metadata CSV of the same service, one row per
sampling point, with at least ``Air Quality Station EoI Code``, ``Sampling Point Id``,
``Longitude``, ``Latitude``, ``Air Quality Station Type`` (background, industrial,
traffic) and ``Air Quality Station Area`` (urban, suburban, rural...), optionally
``Altitude``, ``Country`` and ``Air Pollutant``. Stations are identified by their EoI
code; several NO2 sampling points of one station are averaged hour by hour.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from aprior._io import atomic_path
from aprior.errors import InputFileError
from aprior.inputs.stations import (  # noqa: F401  (re-exported)
    GriddedStations,
    StationData,
    daily_means,
    grid_stations,
    select_stations,
    split_stations,
    valid_fraction,
    window_means,
)

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

NO2_CODE = 8
VALUE_COLUMNS = ("Samplingpoint", "Pollutant", "Start", "Value", "Unit", "Validity")
META_COLUMNS = {
    "Air Quality Station EoI Code": "station_id",
    "Sampling Point Id": "sampling_point",
    "Longitude": "lon",
    "Latitude": "lat",
    "Air Quality Station Type": "type",
    "Air Quality Station Area": "area",
}
META_OPTIONAL = {"Altitude": "altitude", "Country": "country", "Air Pollutant": "pollutant"}
_LEGACY = {"SamplingPoint": "Samplingpoint", "AirPollutantCode": "Pollutant",
           "AirPollutant": "Pollutant", "Concentration": "Value", "UnitOfMeasurement": "Unit",
           "DatetimeBegin": "Start", "DatetimeEnd": "End", "AveragingTime": "AggType"}
_UG_M3 = {"ug.m-3", "µg.m-3", "ug/m3", "µg/m3", "ug m-3", "µg m-3", "ug.m-3 (no2)"}


# -- reading ---------------------------------------------------------------------------
def _value_files(values_paths: PathLike | Sequence[PathLike]) -> list[Path]:
    items = [values_paths] if isinstance(values_paths, str | os.PathLike) else list(values_paths)
    files: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix.lower() in (".parquet", ".csv")
                            and not f.name.startswith("."))
        elif p.exists():
            files.append(p)
        else:
            raise InputFileError("no such file or directory", p)
    return files


def _read_csv(path: Path) -> pd.DataFrame:
    """A CSV separated by commas (or, failing that, semicolons or tabs)."""
    df = pd.read_csv(path)
    if df.shape[1] == 1:
        for sep in (";", "\t"):
            if sep in str(df.columns[0]):
                return pd.read_csv(path, sep=sep)
    return df


def _read_table(path: Path) -> pd.DataFrame:
    try:
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        return _read_csv(path)
    except pd.errors.EmptyDataError as exc:
        raise InputFileError("is empty", path) from exc
    except Exception as exc:  # pyarrow/pandas raise many kinds
        raise InputFileError(f"is not a readable table ({exc})", path) from exc


def _is_no2(pollutant: pd.Series) -> np.ndarray:
    s = pollutant.astype(str).str.strip().str.upper()
    return (s == "NO2") | (s == str(NO2_CODE)) | s.str.endswith(f"/{NO2_CODE}") | (s == f"{NO2_CODE}.0")


def _to_utc(start: pd.Series, offset_hours: float, path: Path) -> np.ndarray:
    try:
        t = pd.to_datetime(start)
    except (ValueError, TypeError):
        try:  # element-wise parsing: slow, only for files mixing formats or offsets
            t = pd.to_datetime(start, utc=True, format="mixed")
        except (ValueError, TypeError) as exc:
            raise InputFileError(f"has unreadable Start times ({exc})", path) from exc
    if getattr(t.dt, "tz", None) is not None:
        t = t.dt.tz_convert("UTC").dt.tz_localize(None)
    else:
        t = t - pd.Timedelta(hours=offset_hours)
    return t.dt.floor("h").to_numpy("datetime64[ns]")


def _read_values(path: Path, offset_hours: float) -> pd.DataFrame | None:
    df = _read_table(path).rename(columns=_LEGACY)
    missing = [c for c in VALUE_COLUMNS if c not in df.columns]
    if missing:
        raise InputFileError(f"lacks the column(s) {missing} of an EEA time-series file", path)
    df = df[_is_no2(df["Pollutant"])]
    if "AggType" in df.columns:
        df = df[df["AggType"].astype(str).str.strip().str.lower() == "hour"]
    if df.empty:
        log.info("%s has no hourly NO2 values; skipped", path)
        return None
    unit = df["Unit"].astype(str).str.strip().str.lower()
    bad_unit = ~unit.isin(_UG_M3)
    if bad_unit.all():
        raise InputFileError(f"has NO2 in {df['Unit'].iloc[0]!r}; ug.m-3 expected", path)
    value = pd.to_numeric(df["Value"], errors="coerce").to_numpy(np.float64, copy=True)
    validity = pd.to_numeric(df["Validity"], errors="coerce").to_numpy(np.float64)
    invalid = ~(validity >= 1) | bad_unit.to_numpy()
    if bad_unit.any():
        log.warning("%s: %d NO2 values not in ug.m-3 were discarded", path, int(bad_unit.sum()))
    value[invalid] = np.nan
    spo = df["Samplingpoint"].astype(str).str.replace(r"^[A-Za-z]{2}/", "", regex=True)
    return pd.DataFrame({"sp": spo.to_numpy(), "time": _to_utc(df["Start"], offset_hours, path),
                         "value": value})


def _read_meta(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise InputFileError("no such file", path)
    try:
        df = _read_csv(path)
    except pd.errors.EmptyDataError as exc:
        raise InputFileError("is empty (no stations)", path) from exc
    except Exception as exc:
        raise InputFileError(f"is not a readable CSV file ({exc})", path) from exc
    missing = [c for c in META_COLUMNS if c not in df.columns]
    if missing:
        raise InputFileError(f"lacks the metadata column(s) {missing}", path)
    if df.empty:
        raise InputFileError("has no stations", path)
    df = df.rename(columns={**META_COLUMNS, **META_OPTIONAL})
    if "pollutant" in df.columns:
        no2 = _is_no2(df["pollutant"])
        df = df[no2 | df["pollutant"].isna()]
    df["sampling_point"] = df["sampling_point"].astype(str).str.replace(r"^[A-Za-z]{2}/", "", regex=True)
    df["type"] = df["type"].astype(str).str.strip().str.lower()
    df["area"] = df["area"].astype(str).str.strip().str.lower()
    for col in ("lon", "lat"):
        df[col] = pd.to_numeric(df[col], errors="coerce")
    if df[["lon", "lat"]].isna().any().any():
        raise InputFileError("has stations without valid Longitude/Latitude", path)
    return df


def read_eea(values_paths: PathLike | Sequence[PathLike], metadata_path: PathLike, *,
             utc_offset_hours: float = 1.0) -> StationData:
    """Read EEA hourly NO2 files and the station metadata into a :class:`StationData`.

    Args:
        values_paths: parquet/CSV files, or directories searched recursively.
        metadata_path: the station metadata CSV.
        utc_offset_hours: offset of zone-less time stamps from UTC (1 for e-Reporting data).
    """
    meta_path = Path(metadata_path)
    meta = _read_meta(meta_path)
    files = [f for f in _value_files(values_paths) if f.resolve() != meta_path.resolve()]
    if not files:
        raise InputFileError("contains no parquet or CSV time-series files", Path(str(values_paths)))
    frames = [f for f in (_read_values(p, utc_offset_hours) for p in files) if f is not None]
    if not frames:
        raise InputFileError("none of the time-series files holds hourly NO2 values", files[0])
    obs = pd.concat(frames, ignore_index=True)
    sp_to_station = meta.drop_duplicates("sampling_point").set_index("sampling_point")["station_id"]
    obs["station"] = obs["sp"].map(sp_to_station)
    unknown = obs["station"].isna()
    if unknown.all():
        raise InputFileError("matches none of the sampling points in the time-series files", meta_path)
    if unknown.any():
        log.warning("%d sampling point(s) are not in %s and were skipped",
                    obs.loc[unknown, "sp"].nunique(), meta_path)
        obs = obs[~unknown]
    stations = np.sort(obs["station"].unique())
    smeta = meta.drop_duplicates("station_id").set_index("station_id")
    smeta = smeta.reindex(stations)
    for col in ("country", "altitude"):
        if col not in smeta.columns:
            smeta[col] = np.nan
    smeta = smeta[["lon", "lat", "type", "area", "country", "altitude"]]
    smeta.index.name = "station_id"
    t0, t1 = obs["time"].min(), obs["time"].max()
    times = np.arange(t0, t1 + np.timedelta64(1, "h"), np.timedelta64(1, "h")).astype("datetime64[ns]")
    ti = ((obs["time"].to_numpy() - times[0]) // np.timedelta64(1, "h")).astype(np.int64)
    si = np.searchsorted(stations, obs["station"].to_numpy())
    flat = ti * stations.size + si
    v = obs["value"].to_numpy()
    ok = np.isfinite(v)
    total = np.bincount(flat[ok], weights=v[ok], minlength=times.size * stations.size)
    count = np.bincount(flat[ok], minlength=times.size * stations.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    values = values.reshape(times.size, stations.size).astype(np.float32)
    log.info("read %d stations, %d hours from %d files", stations.size, times.size, len(files))
    return StationData(smeta, times, values, str(meta_path))


# -- writing (synthetic world) -----------------------------------------------------------
def _country_code(station_id: str, country: object) -> str:
    c = str(country)
    if re.fullmatch(r"[A-Za-z]{2}", c):
        return c.upper()
    sid = str(station_id)
    return sid[:2].upper() if re.match(r"[A-Za-z]{2}", sid) else "XX"


def write_eea(out_dir: PathLike, *, meta: pd.DataFrame, times: np.ndarray, values: np.ndarray,
              fmt: str = "parquet", utc_offset_hours: float = 1.0) -> tuple[list[Path], Path]:
    """Write station data in the download-service layout: one file per sampling point
    plus the metadata CSV ``metadata.csv``.

    Args:
        out_dir: existing or new directory.
        meta: columns ``station_id``, ``lon``, ``lat``, ``station_type``, ``area``,
            ``country``, ``altitude``; one row per station.
        times: ``(t,)`` hourly datetime64, UTC hour starts.
        values: ``(t, n_station)`` NO2 in ug m-3, NaN = missing (written with Validity -1).
        fmt: "parquet" or "csv".

    Returns:
        ``(value files, metadata path)``.
    """
    if fmt not in ("parquet", "csv"):
        raise ValueError("fmt must be 'parquet' or 'csv'")
    need = {"station_id", "lon", "lat", "station_type", "area", "country", "altitude"}
    if need - set(meta.columns):
        raise ValueError(f"meta lacks columns {sorted(need - set(meta.columns))}")
    times = np.asarray(times).astype("datetime64[ns]")
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (times.size, len(meta)):
        raise ValueError(f"values shape {values.shape} != (times, stations) {(times.size, len(meta))}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    local = pd.DatetimeIndex(times) + pd.Timedelta(hours=utc_offset_hours)
    files, rows = [], []
    for k, rec in enumerate(meta.itertuples(index=False)):
        cc = _country_code(rec.station_id, rec.country)
        spo = f"SPO-{rec.station_id}_{NO2_CODE:05d}_100"
        v = values[:, k]
        df = pd.DataFrame({
            "Samplingpoint": f"{cc}/{spo}", "Pollutant": np.int32(NO2_CODE),
            "Start": local, "End": local + pd.Timedelta(hours=1),
            "Value": np.where(np.isfinite(v), v, -9999.0), "Unit": "ug.m-3", "AggType": "hour",
            "Validity": np.where(np.isfinite(v), 1, -1).astype(np.int32),
            "Verification": np.int32(1), "ResultTime": local + pd.Timedelta(days=200),
            "DataCapture": np.where(np.isfinite(v), 100.0, 0.0), "FkObservationLog": f"{spo}-log",
        })
        path = out / f"{spo}.{fmt}"
        with atomic_path(path) as tmp:
            if fmt == "parquet":
                df.to_parquet(tmp, index=False)
            else:
                df.to_csv(tmp, index=False)
        files.append(path)
        rows.append({"Country": rec.country, "Air Quality Station EoI Code": rec.station_id,
                     "Sampling Point Id": spo, "Air Pollutant": "NO2",
                     "Longitude": rec.lon, "Latitude": rec.lat, "Altitude": rec.altitude,
                     "Altitude Unit": "m", "Air Quality Station Area": rec.area,
                     "Air Quality Station Type": rec.station_type})
    meta_path = out / "metadata.csv"
    with atomic_path(meta_path) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)
    return files, meta_path
