"""Requests to the Copernicus data stores (CDS, ADS) and a download cache.

Requests are split by calendar month (days clipped to the asked range): ERA5 single and
pressure levels (24 hours, netCDF), the CAMS European reanalyses (NO2 on the height
levels; the store delivers a zip of netCDF files, for its whole European domain) and
EAC4 PM2.5 (3-hourly, netCDF). The CAMS European analyses (forecast dataset, lead time
0) are requested one day at a time. ERA5, EAC4 and the CAMS analyses are cut to the
region's area, [north, west, south, east], widened to cover the EPSG:3035 grid of the
region plus a margin.

Downloads go to ``<cache>/<dataset>/<key>.<ext>``, ``key`` being the SHA-256 of the
canonical JSON of (dataset, request); the request is stored next to it as ``.json``.
Files are downloaded to a temporary name and renamed when complete; requests whose file
exists are skipped.

Downloading needs ``cdsapi`` (``pip install 'aprior[fetch]'``) and credentials: for the
CDS, ``CDSAPI_URL``/``CDSAPI_KEY`` or ``~/.cdsapirc``; for the ADS, ``ADSAPI_URL``/
``ADSAPI_KEY`` or ``~/.adsapirc`` (falling back to the CDS settings).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pyproj import Transformer

from aprior._io import atomic_path
from aprior.errors import AprioriError, ConfigError
from aprior.grids.grid import LAEA_EUROPE
from aprior.inputs import lexicon as lx

log = logging.getLogger(__name__)

PRODUCTS = ("era5", "cams", "eac4")
HOURS = tuple(f"{h:02d}:00" for h in range(24))


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no spaces: the same request always gives the same text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


@dataclass(frozen=True)
class FetchRequest:
    """One retrieval: ``dataset`` from ``service`` with the store's ``request`` dict."""

    service: str
    dataset: str
    request: dict = field(hash=False)
    ext: str = "nc"

    @property
    def key(self) -> str:
        """SHA-256 hex digest of the canonical JSON of (dataset, request)."""
        text = canonical_json({"dataset": self.dataset, "request": self.request})
        return hashlib.sha256(text.encode()).hexdigest()

    def target(self, cache: str | os.PathLike[str]) -> Path:
        return Path(cache) / self.dataset / f"{self.key[:32]}.{self.ext}"

    def to_json(self, cache: str | os.PathLike[str] | None = None) -> dict:
        out = {"service": self.service, "dataset": self.dataset, "request": self.request}
        if cache is not None:
            out["target"] = str(self.target(cache))
        return out


def _months(start: dt.date, end: dt.date) -> list[tuple[dt.date, dt.date]]:
    """(first, last) day of each calendar month in [start, end], clipped to the range."""
    if end < start:
        raise ConfigError(f"the end date {end} is before the start date {start}")
    out, first = [], start
    while first <= end:
        nxt = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
        out.append((first, min(end, nxt - dt.timedelta(days=1))))
        first = nxt
    return out


def request_area(bbox: Sequence[float], margin_deg: float = 0.5, step: float = 0.25) -> list[float]:
    """[north, west, south, east] covering the EPSG:3035 rectangle around a lon/lat box,
    plus ``margin_deg``, rounded outward to ``step`` degrees."""
    w, s, e, n = (float(v) for v in bbox)
    t = np.linspace(0.0, 1.0, 50)
    lon = np.concatenate([w + t * (e - w), np.full_like(t, e), e - t * (e - w), np.full_like(t, w)])
    lat = np.concatenate([np.full_like(t, s), s + t * (n - s), np.full_like(t, n), n - t * (n - s)])
    fwd = Transformer.from_crs("EPSG:4326", LAEA_EUROPE, always_xy=True)
    x, y = fwd.transform(lon, lat)
    x0, x1, y0, y1 = np.min(x), np.max(x), np.min(y), np.max(y)
    xs = np.concatenate([x0 + t * (x1 - x0), np.full_like(t, x1), x1 - t * (x1 - x0), np.full_like(t, x0)])
    ys = np.concatenate([np.full_like(t, y0), y0 + t * (y1 - y0), np.full_like(t, y1), y1 - t * (y1 - y0)])
    blon, blat = Transformer.from_crs(LAEA_EUROPE, "EPSG:4326", always_xy=True).transform(xs, ys)
    west = np.floor((min(np.min(blon), w) - margin_deg) / step) * step
    east = np.ceil((max(np.max(blon), e) + margin_deg) / step) * step
    south = np.floor((min(np.min(blat), s) - margin_deg) / step) * step
    north = np.ceil((max(np.max(blat), n) + margin_deg) / step) * step
    return [float(min(north, 90.0)), float(max(west, -180.0)), float(max(south, -90.0)),
            float(min(east, 180.0))]


def _days(first: dt.date, last: dt.date) -> list[str]:
    return [f"{d:02d}" for d in range(first.day, last.day + 1)]


def era5_requests(start: dt.date, end: dt.date, area: list[float],
                  single: Sequence[str] = lx.SINGLE_LEVEL_VARIABLES,
                  pressure: Sequence[str] = lx.PRESSURE_LEVEL_VARIABLES,
                  levels_hpa: Sequence[int] = lx.DEFAULT_PRESSURE_LEVELS_HPA) -> list[FetchRequest]:
    """ERA5 single- and pressure-level requests, one pair per month, 24 hours a day."""
    out = []
    for first, last in _months(start, end):
        base = {"product_type": ["reanalysis"], "year": [f"{first.year}"],
                "month": [f"{first.month:02d}"], "day": _days(first, last), "time": list(HOURS),
                "data_format": "netcdf", "download_format": "unarchived", "area": area}
        if single:
            out.append(FetchRequest("cds", lx.ERA5_SINGLE_LEVELS,
                                    {**base, "variable": lx.era5_request_names(tuple(single))}))
        if pressure:
            out.append(FetchRequest("cds", lx.ERA5_PRESSURE_LEVELS,
                                    {**base, "variable": lx.era5_request_names(tuple(pressure)),
                                     "pressure_level": [str(int(p)) for p in levels_hpa]}))
    return out


def cams_requests(start: dt.date, end: dt.date, area: list[float],
                  levels_m: Sequence[int] = lx.CAMS_EU_LEVELS_M, cams_product: str = "reanalysis",
                  kind: str = "validated") -> list[FetchRequest]:
    """CAMS European NO2: monthly reanalysis requests, or daily analysis requests."""
    var = [lx.CAMS_EU_VARIABLES["no2"].request]
    levels = [str(int(v)) for v in levels_m]
    if cams_product == "reanalysis":
        if kind not in lx.CAMS_EU_REANALYSIS_TYPES:
            raise ConfigError(f"unknown CAMS reanalysis type {kind!r}: validated or interim")
        return [FetchRequest("ads", lx.CAMS_EU_REANALYSES, {
            "variable": var, "model": [lx.CAMS_EU_MODEL], "level": levels,
            "type": [lx.CAMS_EU_REANALYSIS_TYPES[kind]], "year": [f"{first.year}"],
            "month": [f"{first.month:02d}"]}, "zip") for first, _ in _months(start, end)]
    if cams_product != "analysis":
        raise ConfigError(f"unknown CAMS product {cams_product!r}: reanalysis or analysis")
    out, day = [], start
    while day <= end:
        out.append(FetchRequest("ads", lx.CAMS_EU_FORECASTS, {
            "variable": var, "model": [lx.CAMS_EU_MODEL], "level": levels,
            "date": [f"{day.isoformat()}/{day.isoformat()}"], "type": ["analysis"],
            "time": list(HOURS), "leadtime_hour": ["0"], "data_format": "netcdf", "area": area}))
        day += dt.timedelta(days=1)
    return out


#: EAC4's grid step (degrees) and the smallest box ``aprior downscale`` accepts (nodes a side)
EAC4_STEP, EAC4_MIN_NODES = 0.75, 4


def eac4_area(bbox: Sequence[float]) -> list[float]:
    """[north, west, south, east] for an EAC4 request: :func:`request_area` rounded outward
    to the 0.75 degree grid, so the ADS returns nodes of the global EAC4 grid, and widened to
    at least :data:`EAC4_MIN_NODES` nodes a side: the regular regional box that
    ``aprior downscale`` accepts (no periodic padding; edges mirrored)."""
    n, w, s, e = request_area(bbox, step=EAC4_STEP)
    span = (EAC4_MIN_NODES - 1) * EAC4_STEP
    if n - s < span:
        s = max(-90.0, n - span)
        n = s + span
    if e - w < span:
        e = min(180.0, w + span)
        w = e - span
    return [float(n), float(w), float(s), float(e)]


def eac4_requests(start: dt.date, end: dt.date, area: list[float]) -> list[FetchRequest]:
    """EAC4 PM2.5 requests, one per month, 3-hourly."""
    return [FetchRequest("ads", lx.CAMS_EAC4, {
        "variable": [lx.EAC4_VARIABLES["pm2p5"].request],
        "date": [f"{first.isoformat()}/{last.isoformat()}"], "time": list(lx.EAC4_TIMES),
        "data_format": "netcdf", "area": area}) for first, last in _months(start, end)]


def build_requests(product: str, start: dt.date, end: dt.date, bbox: Sequence[float],
                   **options: Any) -> list[FetchRequest]:
    """All requests for ``product`` ("era5", "cams" or "eac4") over a lon/lat box."""
    area = eac4_area(bbox) if product == "eac4" else request_area(bbox)
    if product == "era5":
        return era5_requests(start, end, area, **options)
    if product == "cams":
        return cams_requests(start, end, area, **options)
    if product == "eac4":
        return eac4_requests(start, end, area, **options)
    raise ConfigError(f"unknown product {product!r}: one of {', '.join(PRODUCTS)}")


# -- downloading -------------------------------------------------------------------------
def _rc(path: Path) -> tuple[str, str] | None:
    if not path.is_file():
        return None
    conf = {}
    for line in path.read_text().splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            conf[k.strip()] = v.strip()
    return (conf["url"], conf["key"]) if "url" in conf and "key" in conf else None


def credentials(service: str) -> tuple[str, str]:
    """(url, key) for ``service`` from the environment or the rc files."""
    cands = [("ADSAPI", Path.home() / ".adsapirc")] if service == "ads" else []
    cands.append(("CDSAPI", Path(os.environ.get("CDSAPI_RC", Path.home() / ".cdsapirc"))))
    for prefix, rc in cands:
        url, key = os.environ.get(f"{prefix}_URL"), os.environ.get(f"{prefix}_KEY")
        if url and key:
            return url, key
        found = _rc(rc)
        if found:
            return found
    where = "ADSAPI_URL/ADSAPI_KEY or ~/.adsapirc" if service == "ads" else "CDSAPI_URL/CDSAPI_KEY or ~/.cdsapirc"
    raise AprioriError(f"no {service.upper()} credentials: set {where} "
                       "(see https://cds.climate.copernicus.eu/how-to-api)")


def make_client(service: str) -> Any:
    """A ``cdsapi.Client`` for the service; AprioriError without cdsapi or credentials."""
    try:
        import cdsapi
    except ImportError as exc:
        raise AprioriError("downloading needs the cdsapi package: pip install 'aprior[fetch]'") from exc
    url, key = credentials(service)
    return cdsapi.Client(url=url, key=key, quiet=True, progress=False)


def download(requests: Sequence[FetchRequest], cache: str | os.PathLike[str],
             client_factory: Callable[[str], Any] = make_client,
             on_done: Callable[[Path, bool], None] | None = None) -> list[Path]:
    """Retrieve every request not yet in ``cache``; returns the files, in request order.

    ``on_done(path, downloaded)`` is called after each request (downloaded False: cached).
    """
    clients: dict[str, Any] = {}
    paths = []
    for req in requests:
        target = req.target(cache)
        fresh = not target.exists()
        if fresh:
            target.parent.mkdir(parents=True, exist_ok=True)
            if req.service not in clients:
                clients[req.service] = client_factory(req.service)
            log.info("retrieving %s %s", req.dataset, canonical_json(req.request))
            with atomic_path(target, suffix=f".{req.ext}.part") as tmp:
                try:
                    clients[req.service].retrieve(req.dataset, req.request, str(tmp))
                except AprioriError:
                    raise
                except Exception as exc:  # cdsapi/requests raise many kinds
                    reason = " ".join(str(exc).split())[:300] or type(exc).__name__
                    raise AprioriError(f"retrieving {req.dataset} failed: {reason}") from exc
            sidecar = target.with_suffix(".json")
            with atomic_path(sidecar) as tmp:
                tmp.write_text(json.dumps(req.to_json(), indent=1, sort_keys=True))
        else:
            log.info("cached: %s", target)
        paths.append(target)
        if on_done is not None:
            on_done(target, fresh)
    return paths
