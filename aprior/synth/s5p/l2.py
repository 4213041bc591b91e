"""Synthetic Sentinel-5P L2 NO2 files that follow the operational header exactly.

Every group, dimension, variable (dtype, dims, attributes, ``_FillValue``) and global or
group attribute of the packaged header schema (``s5p_no2_header.json``, made from the
``ncdump -h`` of an operational processor-2.6.0 file by ``tools/cdl_to_schema.py``) is
created; per-file attributes (identifiers, times, orbit, bounds) are rewritten. Variables
the caller does not supply stay unwritten: they read back as fill and cost no disk.

The retrieval quantities are self-consistent with the a-priori replacement equations
(see FACTS). With box AMFs ``m``, the "operational" TM5-like prior ``x`` and the true
partial columns ``t`` (all ``(s, p, 34)``), and ``T`` the layers ``l <= l_tp``:

- slant tropospheric column ``S = sum_T m t`` (times ``1 + noise``),
- ``M_trop = sum_T m x / sum_T x`` and the reported column ``N = S / M_trop``,
- ``M = sum_l m x / sum_l x`` (all layers) and ``averaging_kernel = m / M``,

so a retrieval that re-derives ``m = A M`` and takes ``t`` as its a-priori recovers
``sum_T t`` exactly (up to float32 storage).

Geometry (:mod:`~aprior.synth.s5p.swath`), box AMFs and the TM5 layers
(:mod:`~aprior.synth.s5p.atmosphere`) are synthetic models, plausible but
not radiative transfer; each function's docstring says what it assumes. Everything public
is re-exported here.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import netCDF4
import numpy as np

from aprior._io import atomic_path
from aprior.retrieval import s5p_names as names
from aprior.retrieval.granule import N_TM5_LAYERS
from aprior.synth.s5p.atmosphere import (
    air_partial_columns,
    box_amf_model,
    cloud_radiance_fraction,
    layer_pressures,
    synthetic_retrieval,
    tm5_hybrid_coefficients,
)
from aprior.synth.s5p.header import (
    CHUNK_SCANLINES,
    create_from_schema,
    file_attributes,
    load_schema,
    synthetic_filename,
)
from aprior.synth.s5p.swath import (
    S5P_ALTITUDE_KM,
    SCANLINE_SECONDS,
    SwathGeometry,
    destination,
    solar_angles,
    synthetic_swath,
)

__all__ = [
    "CHUNK_SCANLINES",
    "SwathGeometry",
    "air_partial_columns",
    "box_amf_model",
    "cloud_radiance_fraction",
    "create_from_schema",
    "layer_pressures",
    "load_schema",
    "make_test_granule",
    "solar_angles",
    "synthetic_filename",
    "synthetic_retrieval",
    "synthetic_swath",
    "tm5_hybrid_coefficients",
    "write_synthetic_l2",
]


def _put(ds: netCDF4.Dataset, path: str, values, rows: slice | None = None) -> None:
    """Write decoded values (NaN = fill) into ``path``; ``rows`` selects scanlines."""
    try:
        var = ds[path.lstrip("/")]
    except (KeyError, IndexError):
        raise ValueError(f"no variable {path} in the S5P L2 NO2 layout") from None
    if not isinstance(var, netCDF4.Variable):
        raise ValueError(f"{path} is a group, not a variable")
    arr = np.asarray(values)
    dims = var.dimensions
    lead = dims[:1] == ("time",) and arr.ndim == len(dims) - 1
    if lead:
        arr = arr[None]
    shape = list(var.shape)
    if rows is not None:
        shape[dims.index("scanline")] = rows.stop - rows.start
    if list(arr.shape) != shape:
        raise ValueError(
            f"{path}: values of shape {np.shape(values)} do not fit {tuple(shape)} (dims {dims})"
        )
    if var.dtype is not str:
        fill = getattr(var, "_FillValue", None)
        bad = ~np.isfinite(arr) if arr.dtype.kind == "f" else None
        if var.dtype.kind in "iu" and arr.dtype.kind == "f":
            arr = np.rint(np.where(bad, 0, arr))
        if bad is not None and fill is not None:
            arr = np.where(bad, fill, arr)
        arr = arr.astype(var.dtype)
    index = [slice(None)] * len(dims)
    if rows is not None:
        index[dims.index("scanline")] = rows
    var[tuple(index)] = arr


def _check(name: str, arr, shape: tuple) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.shape != shape:
        raise ValueError(f"{name} has shape {arr.shape}, expected {shape}")
    return arr


def _write_static(
    ds: netCDF4.Dataset,
    geometry: SwathGeometry,
    day: np.datetime64,
    tm5_a: np.ndarray,
    tm5_b: np.ndarray,
    surface_pressure: np.ndarray,
    qa_value: np.ndarray,
) -> None:
    s, p = geometry.shape
    for coord, n in (
        ("scanline", s),
        ("ground_pixel", p),
        ("corner", 4),
        ("layer", N_TM5_LAYERS),
        ("vertices", 2),
        ("polynomial_exponents", None),
        ("intensity_offset_polynomial_exponents", None),
    ):
        var = ds[f"PRODUCT/{coord}"]
        var[:] = np.arange(n if n is not None else var.shape[0], dtype=np.int32)
    ref = np.datetime64(day, "ns")
    _put(
        ds,
        names.path_of("time"),
        [int((ref - np.datetime64("2010-01-01", "ns")) // np.timedelta64(1, "s"))],
    )
    delta_ms = (geometry.time - ref) // np.timedelta64(1, "ms")
    _put(ds, names.path_of("delta_time"), delta_ms.astype(np.int32))
    utc = np.char.add(np.datetime_as_string(geometry.time, unit="us"), "Z").astype(object)
    ds[names.path_of("time_utc")][0, :] = utc
    geo = {
        "latitude": geometry.latitude,
        "longitude": geometry.longitude,
        "latitude_bounds": geometry.latitude_bounds,
        "longitude_bounds": geometry.longitude_bounds,
        "solar_zenith_angle": geometry.solar_zenith_angle,
        "viewing_zenith_angle": geometry.viewing_zenith_angle,
        "solar_azimuth_angle": geometry.solar_azimuth_angle,
        "viewing_azimuth_angle": geometry.viewing_azimuth_angle,
        "satellite_latitude": geometry.satellite_latitude,
        "satellite_longitude": geometry.satellite_longitude,
    }
    for name, val in geo.items():
        if val is not None:
            _put(ds, names.path_of(name), val)
    _put(ds, names.path_of("satellite_altitude"), np.full(s, S5P_ALTITUDE_KM * 1e3))
    _put(ds, names.path_of("geolocation_flags"), np.zeros((s, p), np.uint8))
    _put(ds, names.path_of("tm5_constant_a"), tm5_a)
    _put(ds, names.path_of("tm5_constant_b"), tm5_b)
    _put(ds, names.path_of("surface_pressure"), surface_pressure)
    qa = np.asarray(qa_value, dtype=float)
    _put(ds, names.path_of("qa_value"), np.where(np.isfinite(qa), np.rint(qa * 100.0), np.nan))


def write_synthetic_l2(
    path: str | PathLike[str],
    geometry: SwathGeometry,
    *,
    orbit: int,
    box_amf: np.ndarray,
    apriori_tm5: np.ndarray,
    truth: np.ndarray,
    tropopause_index: np.ndarray,
    surface_pressure: np.ndarray,
    tm5_a: np.ndarray,
    tm5_b: np.ndarray,
    qa_value: np.ndarray,
    noise_rel: float = 0.0,
    rng: np.random.Generator | None = None,
    extra: dict[str, np.ndarray] | None = None,
    created: np.datetime64 | None = None,
) -> Path:
    """Write a synthetic S5P L2 NO2 file, atomically.

    Args:
        path: the file, or a directory to put it in under the real file-name pattern.
        geometry: the swath, ``(s, p)`` pixels.
        orbit: orbit number.
        box_amf: ``(s, p, 34)``; 1. Box AMFs ``m`` (scattering weights).
        apriori_tm5: ``(s, p, 34)``; mol m-2. Partial columns of the TM5-like prior that the
            "operational" retrieval used.
        truth: ``(s, p, 34)``; mol m-2. True partial columns.
        tropopause_index: ``(s, p)`` int; 0-based highest tropospheric layer, -1 for fill.
        surface_pressure: ``(s, p)``; Pa.
        tm5_a, tm5_b: ``(34, 2)``; Pa and 1.
        qa_value: ``(s, p)`` in [0, 1]; NaN for fill. Stored with 0.01 steps.
        noise_rel: relative standard deviation of noise on the tropospheric slant column.
        rng: random generator for the noise.
        extra: more variables, product path -> values without the leading ``time`` axis,
            e.g. ``{"PRODUCT/SUPPORT_DATA/INPUT_DATA/surface_albedo": (s, p) array}``.
        created: processing time (default: one day after the end of the granule).

    Returns:
        The path written. Pixels with NaN inputs or ``tropopause_index < 0`` get fill.
    """
    s, p = geometry.shape
    cube = (s, p, N_TM5_LAYERS)
    box_amf = _check("box_amf", box_amf, cube)
    apriori_tm5 = _check("apriori_tm5", apriori_tm5, cube)
    truth = _check("truth", truth, cube)
    tropopause_index = _check("tropopause_index", tropopause_index, (s, p)).astype(np.int64)
    surface_pressure = _check("surface_pressure", surface_pressure, (s, p))
    tm5_a = _check("tm5_a", tm5_a, (N_TM5_LAYERS, 2))
    tm5_b = _check("tm5_b", tm5_b, (N_TM5_LAYERS, 2))
    qa_value = _check("qa_value", qa_value, (s, p))
    steps = np.diff(geometry.time) / np.timedelta64(1, "s")
    dt_s = float(np.median(steps)) if s > 1 else SCANLINE_SECONDS
    end = geometry.time[-1] + np.timedelta64(int(round(dt_s * 1e9)), "ns")
    created = (
        np.datetime64(created, "s")
        if created is not None
        else np.datetime64(end, "s") + np.timedelta64(1, "D")
    )
    target = Path(path)
    if target.is_dir():
        target = target / synthetic_filename(geometry.time[0], end, orbit, created)
    file_id = target.name[:-3] if target.name.endswith(".nc") else target.name
    schema = load_schema()
    globals_, anywhere, subst = file_attributes(schema, geometry, orbit, file_id, end, created)

    def fix(gpath: str, name: str, dtype: str, value: object) -> object:
        if gpath == "" and name in globals_:
            return globals_[name]
        if name in anywhere:
            return anywhere[name]
        if dtype == "char" and isinstance(value, str):
            for old, new in subst:
                value = value.replace(old, new)
        return value

    noise = np.zeros((s, p))
    if noise_rel:
        noise = noise_rel * (rng if rng is not None else np.random.default_rng()).standard_normal(
            (s, p)
        )
    geo_amf = 1.0 / np.cos(np.radians(geometry.solar_zenith_angle)) + 1.0 / np.cos(
        np.radians(geometry.viewing_zenith_angle)
    )
    with atomic_path(target) as tmp, netCDF4.Dataset(tmp, "w", format="NETCDF4") as ds:
        create_from_schema(ds, schema, {"scanline": s, "ground_pixel": p}, fix)
        ds.set_auto_maskandscale(False)
        _write_static(
            ds,
            geometry,
            geometry.time[0].astype("datetime64[D]"),
            tm5_a,
            tm5_b,
            surface_pressure,
            qa_value,
        )
        for r0 in range(0, s, CHUNK_SCANLINES):
            rows = slice(r0, min(s, r0 + CHUNK_SCANLINES))
            tp = tropopause_index[rows]
            out = synthetic_retrieval(
                box_amf[rows], apriori_tm5[rows], truth[rows], tp, geo_amf[rows], noise[rows]
            )
            for name, val in out.items():
                _put(ds, names.path_of(name), val, rows)
            _put(ds, names.path_of("tropopause_index"), np.where(tp >= 0, tp, -2147483647), rows)
        for key, val in (extra or {}).items():
            _put(ds, key, val)
    return target


def make_test_granule(
    path: str | PathLike[str],
    *,
    n_scanline: int = 60,
    n_ground_pixel: int = 40,
    bbox_center: tuple[float, float] = (4.5, 50.5),
    seed: int = 0,
    profile: np.ndarray | None = None,
) -> Path:
    """A small consistent L2 NO2 file over Belgium for tests.

    Ground pixels are ~7 km wide, scanlines 5.5 km apart, centred on ``bbox_center``
    (lon, lat). The truth has a boundary layer (~1 km) with city plumes (Brussels,
    Antwerp, Liege) over a clean background and a stratospheric NO2 layer peaking near
    10 hPa; the TM5-like prior is smoother and deeper. Clouds are mostly thin.

    Args:
        path: the file, or a directory to put it in under the real file-name pattern.
        profile: true partial columns (mol m-2), ``(34,)`` for every pixel or
            ``(s, p, 34)``; default: the plume field above.

    Returns:
        The path written.
    """
    rng = np.random.default_rng(seed)
    lon_c, lat_c = bbox_center
    heading = -16.0
    start_lat, _ = destination(lat_c, lon_c, heading + 180.0, n_scanline * 5.5 / 2.0)
    geom = synthetic_swath(
        n_scanline,
        n_ground_pixel,
        start_time=np.datetime64("2024-08-15T12:45:00"),
        center_lon=lon_c,
        start_lat=float(start_lat),
        swath_km=7.0 * n_ground_pixel,
        heading_deg=heading,
    )
    lat, lon = geom.latitude, geom.longitude
    ps = 101300.0 - 3500.0 * np.exp(-((lat - 50.2) ** 2 + 0.4 * (lon - 5.8) ** 2) / 0.3)
    a, b = tm5_hybrid_coefficients()
    pmid = layer_pressures(a, b, ps).mean(axis=-1)
    air = air_partial_columns(a, b, ps)
    p_tropopause = 22000.0 + 600.0 * (lat - 50.0)
    tp = np.sum(pmid > p_tropopause[..., None], axis=-1) - 1
    plumes = sum(
        amp * np.exp(-((lat - y) ** 2 + ((lon - x) * 0.64) ** 2) / (2 * 0.12**2))
        for x, y, amp in ((4.35, 50.85, 7e-9), (4.40, 51.22, 5e-9), (5.57, 50.63, 4e-9))
    )
    v_surf = (0.6e-9 + plumes) * rng.lognormal(0.0, 0.15, lat.shape)
    depth = ps[..., None] - pmid
    strat = 4.5e-9 * np.exp(-0.5 * ((np.log(pmid) - np.log(1000.0)) / 0.9) ** 2)
    truth_vmr = v_surf[..., None] * np.exp(-depth / 10000.0) + 3e-11 + strat
    prior_surf = v_surf.mean() + 0.4 * (v_surf - v_surf.mean())
    prior_vmr = prior_surf[..., None] * np.exp(-depth / 16000.0) + 5e-11 + strat
    truth = (
        truth_vmr * air
        if profile is None
        else np.broadcast_to(np.asarray(profile, float), air.shape)
    )
    albedo = 0.05 + 0.02 * rng.random(lat.shape)
    cloud_fraction = np.clip(rng.beta(0.6, 5.0, lat.shape), 0.0, 1.0)
    cloud_pressure = rng.uniform(60000.0, 90000.0, lat.shape)
    n = lat.size
    box = box_amf_model(
        pmid.reshape(n, -1),
        ps.ravel(),
        sza=geom.solar_zenith_angle.ravel(),
        vza=geom.viewing_zenith_angle.ravel(),
        albedo=albedo.ravel(),
        cloud_fraction=cloud_fraction.ravel(),
        cloud_pressure=cloud_pressure.ravel(),
    )
    qa = np.where(cloud_fraction <= 0.3, 1.0, np.where(cloud_fraction <= 0.5, 0.74, 0.41))
    extra = {
        f"{names.INPUT_DATA}/surface_albedo_nitrogendioxide_window": albedo,
        f"{names.INPUT_DATA}/cloud_pressure_crb": cloud_pressure,
        f"{names.INPUT_DATA}/surface_altitude": 8434.0 * np.log(101325.0 / ps),
        f"{names.DETAILED_RESULTS}/cloud_fraction_crb_nitrogendioxide_window": cloud_fraction,
        f"{names.DETAILED_RESULTS}/cloud_radiance_fraction_nitrogendioxide_window": cloud_radiance_fraction(
            cloud_fraction, albedo
        ),
    }
    return write_synthetic_l2(
        path,
        geom,
        orbit=35442,
        box_amf=box.reshape(air.shape),
        apriori_tm5=prior_vmr * air,
        truth=truth,
        tropopause_index=tp,
        surface_pressure=ps,
        tm5_a=a,
        tm5_b=b,
        qa_value=qa,
        extra=extra,
    )
