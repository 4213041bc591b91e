"""Configuration of the synthetic world (:class:`SynthConfig`).

The defaults make the small world of ``fixtures/world``: the ``demo`` region
(3-7E, 49.5-52.5N, a 320 x 368 km EPSG:3035 window of the DACNO2 2 km domain grid) over
two January days of 2023 (a Friday and a Saturday): about 18 MB in about 12 s. Any region
inside the DACNO2 domain and any period can be asked for; the world is generated and
written one day at a time, so memory stays bounded whatever the period.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

from aprior.errors import ConfigError
from aprior.grids.levels import CAMS_LEVELS_M, DEFAULT_LEVELS_M
from aprior.inputs.era5_cds import DEFAULT_PRESSURE_LEVELS_HPA


def _as_date(value: object, what: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"{what} must be a date YYYY-MM-DD, got {value!r}") from None


@dataclass(frozen=True)
class SynthConfig:
    """What synthetic world to make.

    Attributes:
        seed: the world seed; the same seed gives the same world (arrays bit for bit).
        start, end: first and last day (inclusive, UTC).
        region: a region name of :mod:`aprior.grids.regions`, a ``"w,s,e,n"`` string
            or a ``(w, s, e, n)`` box in degrees, inside the DACNO2 domain.
        margin_km: transport margin around the region (km, a multiple of 16, at least
            32): the chemistry runs on the region grid widened by this much so that upwind
            sources are not cut off.
        static_resolution_m: resolution of the fine static rasters (CORINE-like land
            cover is written at it; population at 1 km; 2 km maps are their means).
        spinup_hours: hours of chemistry run before ``start`` (from a background state).
        levels_m: the model levels (m above ground); must be a subset of ``cams_levels_m``.
        cams_levels_m: the heights at which the truth and the CAMS-like field are made.
        pressure_levels_hpa: ERA5 pressure levels written.
        era5_margin_deg, cams_margin_deg: margins of the written ERA5 (0.25 deg) and
            CAMS-like (0.1 deg) grids around the lon/lat box of the region grid (the
            CAMS-like margin must stay inside the transport margin: at most 0.25 deg).
        cams_lon_convention: "0-360" (as the ADS files) or "-180..180".
        pm25_hours: hours of the global PM2.5 fields written from ``start`` (hourly
            0.25 deg and 3-hourly 0.75 deg); None for the whole period; 0 for none. The
            global grids are large (1 M cells an hour), so the default keeps 00-06 UTC of the first
            day: three 3-hourly coarse frames and the seven hourly fine ones between them.
        eac4_hours: hours of the 3-hourly 0.75 deg (EAC4-like) field written from ``start``
            when more than ``pm25_hours`` are wanted (it always covers at least those);
            None for the whole period. ``fixtures/world`` uses 48 (two whole days), so the
            demo orbits have PM2.5 context at their overpass.
        day_step: make every ``day_step``-th day of the period only (1: every day). Each
            day after a gap gets its own ``spinup_hours`` of chemistry, so a long period
            can be sampled cheaply (e.g. model training worlds); station series then
            cover the made days only.
        s5p: write the Sentinel-5P orbits (one a day, about 12:30 UTC).
        s5p_noise_rel: relative noise added to the synthetic S5P columns (0: exact).
        station_spacing_km: EEA-like station spacing in cities and suburbs (rural
            stations are about six times sparser).
        eea_format: format of the EEA-like files ("parquet" or "csv").
    """

    seed: int = 0
    start: dt.date = dt.date(2023, 1, 13)
    end: dt.date = dt.date(2023, 1, 14)
    region: str | tuple[float, float, float, float] = "demo"
    margin_km: float = 64.0
    static_resolution_m: int = 500
    spinup_hours: int = 24
    levels_m: tuple[float, ...] = DEFAULT_LEVELS_M
    cams_levels_m: tuple[float, ...] = CAMS_LEVELS_M
    pressure_levels_hpa: tuple[int, ...] = tuple(DEFAULT_PRESSURE_LEVELS_HPA)
    era5_margin_deg: float = 0.5
    cams_margin_deg: float = 0.2
    cams_lon_convention: str = "0-360"
    pm25_hours: int | None = 7
    eac4_hours: int | None = 0
    day_step: int = 1
    s5p: bool = True
    s5p_noise_rel: float = 0.0
    station_spacing_km: float = 20.0
    eea_format: str = "parquet"

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "start", _as_date(self.start, "start"))
        set_(self, "end", _as_date(self.end, "end"))
        if self.end < self.start:
            raise ConfigError(f"end {self.end} is before start {self.start}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, got {self.seed!r}")
        if isinstance(self.region, list):
            set_(self, "region", tuple(float(v) for v in self.region))
        if self.margin_km < 32 or self.margin_km % 16:
            raise ConfigError(f"margin_km must be a multiple of 16 of at least 32, got {self.margin_km}")
        if not 0.0 <= self.cams_margin_deg <= 0.25 or not 0.0 <= self.era5_margin_deg <= 3.0:
            raise ConfigError("cams_margin_deg must be in [0, 0.25] and era5_margin_deg in [0, 3]")
        if self.static_resolution_m not in (250, 500, 1000):
            raise ConfigError("static_resolution_m must be 250, 500 or 1000")
        if self.spinup_hours < 0:
            raise ConfigError("spinup_hours must be >= 0")
        self._check_levels()
        if self.cams_lon_convention not in ("0-360", "-180..180"):
            raise ConfigError("cams_lon_convention must be '0-360' or '-180..180'")
        if self.pm25_hours is not None and self.pm25_hours < 0:
            raise ConfigError("pm25_hours must be >= 0 or None")
        if self.eac4_hours is not None and self.eac4_hours < 0:
            raise ConfigError("eac4_hours must be >= 0 or None")
        if not isinstance(self.day_step, int) or self.day_step < 1:
            raise ConfigError(f"day_step must be a positive integer, got {self.day_step!r}")
        if not 0.0 <= self.s5p_noise_rel < 1.0:
            raise ConfigError("s5p_noise_rel must be in [0, 1)")
        if self.station_spacing_km <= 2:
            raise ConfigError("station_spacing_km must be > 2")
        if self.eea_format not in ("parquet", "csv"):
            raise ConfigError("eea_format must be 'parquet' or 'csv'")

    def _check_levels(self) -> None:
        set_ = object.__setattr__
        set_(self, "levels_m", tuple(float(v) for v in self.levels_m))
        set_(self, "cams_levels_m", tuple(float(v) for v in self.cams_levels_m))
        set_(self, "pressure_levels_hpa", tuple(int(v) for v in self.pressure_levels_hpa))
        missing = [h for h in self.levels_m if h not in self.cams_levels_m]
        if missing:
            raise ConfigError(f"model levels {missing} are not among the CAMS levels {self.cams_levels_m}")
        if list(self.cams_levels_m) != sorted(set(self.cams_levels_m)) or self.cams_levels_m[0] < 0:
            raise ConfigError("cams_levels_m must be increasing heights >= 0")
        if list(self.pressure_levels_hpa) != sorted(set(self.pressure_levels_hpa), reverse=True):
            raise ConfigError("pressure_levels_hpa must be decreasing (surface first)")

    # -- derived --------------------------------------------------------------------
    @property
    def days(self) -> list[dt.date]:
        """The days of the period, in order."""
        n = (self.end - self.start).days + 1
        return [self.start + dt.timedelta(days=i) for i in range(0, n, self.day_step)]

    @property
    def n_pm25_hours(self) -> int:
        total = 24 * len(self.days)
        return total if self.pm25_hours is None else min(self.pm25_hours, total)

    @property
    def n_eac4_hours(self) -> int:
        total = 24 * len(self.days)
        own = total if self.eac4_hours is None else min(self.eac4_hours, total)
        return max(own, self.n_pm25_hours)

    def to_dict(self) -> dict:
        """A JSON-able dict of the settings (dates as ISO strings)."""
        out = asdict(self)
        out["start"], out["end"] = self.start.isoformat(), self.end.isoformat()
        out["region"] = self.region if isinstance(self.region, str) else list(self.region)
        for key in ("levels_m", "cams_levels_m", "pressure_levels_hpa"):
            out[key] = list(out[key])
        return out
