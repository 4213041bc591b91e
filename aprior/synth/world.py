"""Making a synthetic world: build the static world, then run and write it day by day.

:func:`generate_world` is the library entry point of ``aprior synth``. Everything but the
EEA-like station series (written at the end of each year) is written as it is made, one
day at a time, so memory stays bounded for any period and region. Every file is
written atomically; ``manifest.json``, written last, marks the world complete.

Layout (see ``docs/synthetic-world.md``)::

    manifest.json, README.txt
    static/      population_1km.tif corine_clc.tif nightlight_viirs.tif elevation_dem.tif
                 roads.geojson cams_glob_ant_nox.nc
    flights/     flights.csv
    era5/single/era5_single_levels_YYYYMMDD.nc    era5/pressure/era5_pressure_levels_YYYYMMDD.nc
    cams_eu/     cams_eu_no2_YYYYMMDD.nc
    eea/YYYY/    metadata.csv, SPO-<station>_00008_100.parquet (one directory a year)
    pm25/geoscf/ geoscf_pm25_YYYYMMDD.nc          pm25/eac4/eac4_pm2p5_YYYYMMDD.nc
    s5p/         S5P_OFFL_L2__NO2____<start>_<end>_<orbit>_03_020600_<processed>.nc
    truth/       README.txt, no2_daily/, no2_s5p/, s5p/, eea/, static/
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aprior._io import staging_dir
from aprior.a_priori.cams_eu import write_cams_eu
from aprior.a_priori.cf_field import write_cf_field
from aprior.a_priori.field import ProfileField
from aprior.grids.grid import Grid, lonlat_of, subdomain, window_offset
from aprior.grids.regions import load_region
from aprior.inputs.eea import write_eea
from aprior.inputs.era5_cds import write_era5_pressure_levels, write_era5_single_levels
from aprior.inputs.pm25 import write_eac4_pm25, write_geoscf_pm25
from aprior.interrupts import deferred
from aprior.synth.aerosol import LAT_025, LAT_075, LON_025, LON_075, GlobalPM25, to_075
from aprior.synth.chemistry import Chemistry
from aprior.synth.config import SynthConfig
from aprior.synth.files import (
    SYNTH_ATTRS,
    write_static_inputs,
    write_truth_orbit,
    write_truth_static,
    write_truth_stations,
)
from aprior.synth.manifest import (
    ManifestBuilder,
    check_output_dir,
    prepare_output,
    publish,
    write_readmes,
)
from aprior.synth.meteo import Era5Day, Meteo, era5_axes
from aprior.synth.noise import component_rng, round_bits
from aprior.synth.observations import CamsModel, cams_axes, draw_stations, measure, point_values
from aprior.synth.s5p.l2 import tm5_hybrid_coefficients, write_synthetic_l2
from aprior.synth.s5p.orbits import simulate_orbit
from aprior.synth.settlements import settlements
from aprior.synth.static_world import fine_static, static_2km
from aprior.synth.weather import hours_since_epoch, winter_weight

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Domain:
    """The grids of a world: the 2 km region grid, the wider chemistry grid around it and
    the fine static raster over the chemistry grid."""

    bbox: tuple[float, float, float, float]
    region: Grid
    chem: Grid
    fine: Grid

    @property
    def cover(self) -> tuple[float, float, float, float]:
        """The lon/lat box of the region grid (wider than ``bbox``: the grid is snapped out
        to 16 km); the lat/lon products cover it plus a margin."""
        return self.lonlat_box(self.region)

    @classmethod
    def from_config(cls, cfg: SynthConfig) -> Domain:
        reg = load_region(cfg.region)
        region = subdomain(reg, 2000)
        m = int(cfg.margin_km * 1000)
        chem = Grid(region.crs, region.x0 - m, region.y0 - m, 2000.0, 2000.0,
                    region.nx + 2 * m // 2000, region.ny + 2 * m // 2000)
        f = 2000 // cfg.static_resolution_m
        fine = Grid(region.crs, chem.x0, chem.y0, float(cfg.static_resolution_m),
                    float(cfg.static_resolution_m), chem.nx * f, chem.ny * f)
        return cls(reg.bbox, region, chem, fine)

    def lonlat_box(self, grid: Grid) -> tuple[float, float, float, float]:
        lon, lat = lonlat_of(grid)
        return float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max())


def generate_world(out_dir: str | Path, cfg: SynthConfig | None = None, *, overwrite: bool = False,
                   progress: Progress | None = None) -> Path:
    """Write the synthetic world of ``cfg`` into ``out_dir``; returns the manifest path.

    The world is written into a staging directory beside ``out_dir`` and moved into place
    when complete (replacing an earlier world with ``overwrite``), so an interrupted run
    leaves nothing behind (see :func:`aprior.synth.manifest.prepare_output`).
    """
    cfg = cfg or SynthConfig()
    final = Path(out_dir)
    dom = Domain.from_config(cfg)
    check_output_dir(final, overwrite)
    with staging_dir(final) as root:
        manifest = _generate_into(root, cfg, dom, progress)
        with deferred():  # the old world goes and the new one comes in together
            prepare_output(final, overwrite)
            publish(root, final)
    log.info("synthetic world written to %s", final)
    return final / manifest.name


def _generate_into(root: Path, cfg: SynthConfig, dom: Domain, progress: Progress | None) -> Path:
    rec = ManifestBuilder(root)
    write_readmes(root, rec, f"seed {cfg.seed}, region {cfg.region}, {cfg.start} to {cfg.end}.")
    say = progress or (lambda what, i, n: None)
    say("static world", 0, 1)
    settle = settlements(cfg.seed)
    fine = fine_static(cfg.seed, dom.fine, settle)
    chem_static = static_2km(fine, dom.chem)
    region_static = chem_static.window(dom.region)
    write_static_inputs(root, rec, seed=cfg.seed, days=cfg.days, fine=fine, settle=settle,
                        region_grid=dom.region, bbox=dom.cover)
    write_truth_static(root, rec, region_static, settle, dom.cover)
    del fine  # the fine rasters are large for big regions; only the 2 km maps go on
    run = _Run(cfg, dom, root, rec, chem_static, region_static, settle)
    run.run(say)
    info = {"region": {"name": str(cfg.region), "bbox": list(dom.bbox)},
            "grid_2km": {k: getattr(dom.region, k) for k in ("crs", "x0", "y0", "dx", "dy", "nx", "ny")},
            "period": {"start": cfg.start.isoformat(), "end": cfg.end.isoformat()},
            "levels_m": list(cfg.levels_m), "truth_levels_m": list(cfg.cams_levels_m),
            "pressure_levels_hpa": list(cfg.pressure_levels_hpa),
            "n_stations": int(len(run.stations.meta))}
    manifest = rec.write(cfg.to_dict(), info)
    log.debug("synthetic world staged in %s: %d files", root, len(rec.entries))
    return manifest


class _Run:
    """The day loop: meteorology, chemistry, CAMS-like, stations, orbits, PM2.5."""

    def __init__(self, cfg, dom, root, rec, chem_static, region_static, settle) -> None:
        self.cfg, self.dom, self.root, self.rec = cfg, dom, root, rec
        self.region_static = region_static
        w, s, e, n = dom.lonlat_box(dom.chem)
        bw, bs, be, bn = dom.cover
        m = cfg.era5_margin_deg
        self.era5_lat, self.era5_lon = era5_axes(
            (min(w - 0.5, bw - m), min(s - 0.5, bs - m), max(e + 0.5, be + m), max(n + 0.5, bn + m)), 0.0)
        out_lat, out_lon = era5_axes(dom.cover, m)
        j0 = int(np.flatnonzero(np.isclose(self.era5_lat, out_lat[0]))[0])
        i0 = int(np.flatnonzero(np.isclose(self.era5_lon, out_lon[0]))[0])
        self.era5_cut = (slice(j0, j0 + out_lat.size), slice(i0, i0 + out_lon.size))
        self.meteo = Meteo(cfg.seed, self.era5_lat, self.era5_lon, cfg.pressure_levels_hpa)
        self.heights = np.asarray(cfg.cams_levels_m)
        self.chem = Chemistry(chem_static, self.era5_lat, self.era5_lon, self.meteo.levels, self.heights)
        self.cams_lat, self.cams_lon = cams_axes(dom.cover, cfg.cams_margin_deg)
        self.cams = CamsModel(cfg.seed, chem_static, self.era5_lat, self.era5_lon, self.meteo.levels,
                              self.cams_lat, self.cams_lon, self.heights)
        self.stations = draw_stations(cfg.seed, region_static, dom.region, cfg.station_spacing_km,
                                      (settle.sources.x, settle.sources.y))
        i0, j0 = window_offset(dom.chem, dom.region)
        self.offset = (j0, i0)
        self.cut = (slice(None), slice(j0, j0 + dom.region.ny), slice(i0, i0 + dom.region.nx))
        self.eea_values: list[np.ndarray] = []
        self.eea_truth: list[np.ndarray] = []
        self.times: list[np.ndarray] = []
        for sub in ("era5/single", "era5/pressure", "cams_eu", "truth/no2_daily", "truth/no2_s5p",
                    "truth/eea"):
            (root / sub).mkdir(parents=True, exist_ok=True)

    def run(self, say: Progress) -> None:
        cfg = self.cfg
        state = self._spinup(cfg.start, None)
        pm = _PM25(cfg, self.root, self.rec)
        for n, day in enumerate(cfg.days):
            say("days", n, len(cfg.days))
            log.info("synthetic world: %s", day)
            if n and day.year != cfg.days[n - 1].year:
                self._write_eea()
            if n and (day - cfg.days[n - 1]).days > 1:
                state = self._spinup(day, state)
            era5 = self.meteo.day(day)
            if state is None:
                state = (self.chem.initial_state(day, era5), self.cams.initial_state(day, era5))
            self._write_era5(day, era5)
            self._day(day, era5, state)
            pm.day(day)
        say("days", len(cfg.days), len(cfg.days))
        self._write_eea()

    def _spinup(self, start: dt.date, state):
        """Run the truth's and the CAMS-like model's chemistry for ``spinup_hours`` before
        ``start`` (from ``state``, the pair of their states, or from background states when
        None); returns the pair at ``start``."""
        spin_days = -(-self.cfg.spinup_hours // 24)
        first = start - dt.timedelta(days=spin_days)
        for k in range(spin_days):
            day = first + dt.timedelta(days=k)
            era5 = self.meteo.day(day)
            hour0 = 24 * spin_days - self.cfg.spinup_hours if k == 0 else 0
            if state is None:
                state = (self.chem.initial_state(day, era5, hour0), self.cams.initial_state(day, era5, hour0))
            for _ in self.chem.run_day(day, era5, state[0], first_hour=hour0):
                pass
            for _ in self.cams.run_day(day, era5, state[1], first_hour=hour0):
                pass
        return state

    def _write_era5(self, day: dt.date, era5: Era5Day) -> None:
        """The region + margin part, rounded to 12 significant bits (about the precision of
        ERA5's 16-bit GRIB packing)."""
        tag = day.strftime("%Y%m%d")
        jj, ii = self.era5_cut
        lat, lon = era5.lat[jj], era5.lon[ii]
        single = {k: round_bits(v[:, jj, ii], 12) for k, v in era5.single.items()}
        pressure = {k: round_bits(v[:, :, jj, ii], 12) for k, v in era5.pressure.items()}
        p = write_era5_single_levels(self.root / "era5/single" / f"era5_single_levels_{tag}.nc",
                                     times=era5.times, lat=lat, lon=lon, fields=single)
        self.rec.add(p, "era5_single_levels", date=day.isoformat())
        p = write_era5_pressure_levels(self.root / "era5/pressure" / f"era5_pressure_levels_{tag}.nc",
                                       times=era5.times, levels_hpa=era5.levels_hpa, lat=lat,
                                       lon=lon, fields=pressure)
        self.rec.add(p, "era5_pressure_levels", date=day.isoformat())

    def _day(self, day: dt.date, era5, state) -> None:
        js, is_ = self.stations.j + self.offset[0], self.stations.i + self.offset[1]
        cams, sfc, wind = [], [], []
        daily = np.zeros((self.heights.size, *self.dom.region.shape))
        window = np.zeros_like(daily)
        point = []
        for ht, cams_hour in zip(self.chem.run_day(day, era5, state[0]),
                                 self.cams.run_day(day, era5, state[1]), strict=True):
            hour = int((ht.time - ht.time.astype("datetime64[D]")) // np.timedelta64(1, "h"))
            cams.append(cams_hour)
            sfc.append(ht.no2[0, js, is_])
            point.append(point_values(ht.no2[0], self.stations, self.offset))
            wind.append(ht.wind[js, is_])
            reg = ht.no2[self.cut]
            daily += reg
            if 11 <= hour <= 13:
                window += reg
        tag = day.strftime("%Y%m%d")
        # the truth is defined at 12 significant bits (0.02 %): what is written is exact
        daily = round_bits(daily / 24.0, 12)
        window = round_bits(window / 3.0, 12)
        p = write_cams_eu(self.root / "cams_eu" / f"cams_eu_no2_{tag}.nc", times=era5.times,
                          levels=self.heights, lat=self.cams_lat, lon=self.cams_lon,
                          no2_conc=round_bits(np.stack(cams), 12), lon_convention=self.cfg.cams_lon_convention,
                          kind="ANALYSIS", attrs={"comment": "SYNTHETIC (aprior synth)"})
        self.rec.add(p, "cams_eu_no2", date=day.isoformat())
        truth_sfc = np.stack(sfc)
        self.eea_truth.append(truth_sfc)
        self.eea_values.append(measure(self.cfg.seed, self.stations, day, np.stack(point), np.stack(wind)))
        self.times.append(era5.times)
        t0 = np.datetime64(day.isoformat(), "ns")
        for sub, kind, field, t, what in (
                ("no2_daily", "truth_no2_daily", daily, t0, "daily mean (UTC day)"),
                ("no2_s5p", "truth_no2_s5p", window, t0 + np.timedelta64(12, "h"),
                 "mean of 11, 12 and 13 UTC")):
            pf = ProfileField(field[None].astype(np.float32), self.heights, self.dom.region,
                              np.array([t]), source="synthetic truth (aprior synth)")
            p = write_cf_field(self.root / "truth" / sub / f"truth_{sub}_{tag}.nc", pf,
                               attrs={**SYNTH_ATTRS, "time_reduction": what,
                                      "title": "SYNTHETIC TRUTH: 3D NO2 of the synthetic world"})
            self.rec.add(p, kind, date=day.isoformat())
        if self.cfg.s5p:
            self._orbit(day, era5, window)

    def _orbit(self, day: dt.date, era5, no2_s5p: np.ndarray) -> None:
        hour = 12
        winter = float(winter_weight(hours_since_epoch(era5.times[hour:hour + 1])[0]))
        orbit = simulate_orbit(self.cfg.seed, day, region_grid=self.dom.region, bbox=self.dom.cover,
                               no2_s5p=no2_s5p, heights=self.heights,
                               albedo_map=self.region_static.albedo(winter),
                               era5_lat=era5.lat, era5_lon=era5.lon,
                               sp_hour=era5.single["sp"][hour], tcc_hour=era5.single["tcc"][hour])
        a, b = tm5_hybrid_coefficients()
        d = self.root / "s5p"
        d.mkdir(exist_ok=True)
        p = write_synthetic_l2(d, orbit.geometry, orbit=orbit.orbit, box_amf=orbit.box_amf,
                               apriori_tm5=orbit.apriori_tm5, truth=orbit.truth,
                               tropopause_index=orbit.tropopause_index,
                               surface_pressure=orbit.surface_pressure, tm5_a=a, tm5_b=b,
                               qa_value=orbit.qa_value, noise_rel=self.cfg.s5p_noise_rel,
                               rng=component_rng(self.cfg.seed, "s5p", "noise", day.toordinal()),
                               extra=orbit.extra)
        self.rec.add(p, "s5p_l2_no2", date=day.isoformat())
        (self.root / "truth" / "s5p").mkdir(exist_ok=True)
        t = write_truth_orbit(self.root / "truth" / "s5p" / (p.stem + "_truth.nc"), orbit, p.name)
        self.rec.add(t, "truth_s5p_orbit", date=day.isoformat())

    def _write_eea(self) -> None:
        """Flush the station series of the year collected so far (one directory a year, as
        the download service delivers them, so memory stays bounded for long periods)."""
        if not self.times:
            return
        times = np.concatenate(self.times)
        year = str(times[0].astype("datetime64[Y]"))
        files, meta_path = write_eea(self.root / "eea" / year, meta=self.stations.meta, times=times,
                                     values=np.concatenate(self.eea_values), fmt=self.cfg.eea_format)
        for f in files:
            self.rec.add(f, "eea_values", date=year)
        self.rec.add(meta_path, "eea_metadata", date=year)
        p = write_truth_stations(self.root / "truth" / "eea" / f"station_truth_{year}.nc", self.stations,
                                 times, np.concatenate(self.eea_truth))
        self.rec.add(p, "truth_stations", date=year)
        self.times, self.eea_values, self.eea_truth = [], [], []


class _PM25:
    """The global PM2.5 fields, hour by hour: the hourly 0.25 deg (GEOS-CF-like) field for the
    first ``cfg.n_pm25_hours`` hours and the 3-hourly 0.75 deg (EAC4-like) field for the first
    ``cfg.n_eac4_hours`` hours; the model runs for the longer of the two."""

    def __init__(self, cfg: SynthConfig, root: Path, rec: ManifestBuilder) -> None:
        self.cfg, self.root, self.rec = cfg, root, rec
        self.fine_left = cfg.n_pm25_hours
        self.coarse_left = cfg.n_eac4_hours
        self.left = max(self.fine_left, self.coarse_left)
        self.model = GlobalPM25(cfg.seed) if self.left else None
        self.state = None

    def day(self, day: dt.date) -> None:
        if not self.left or self.model is None:
            return
        t0 = np.datetime64(day.isoformat(), "h")
        h0 = float(hours_since_epoch(np.array([t0]))[0])
        if self.state is None:
            self.state = self.model.initial(h0 - 24.0)
            for k in range(24):
                self.state = self.model.step(self.state, h0 - 23.0 + k)
        n = min(24, self.left)
        fields = []
        for k in range(n):
            if k:
                self.state = self.model.step(self.state, h0 + k)
            fields.append(round_bits(self.model.surface(self.state, h0 + k), 6))
        if n == 24 and self.left > 24:
            self.state = self.model.step(self.state, h0 + 24)
        self.left -= n
        n_fine, n_coarse = min(n, self.fine_left), min(n, self.coarse_left)
        self.fine_left -= n_fine
        self.coarse_left -= n_coarse
        times = t0 + np.arange(n).astype("timedelta64[h]")
        geo = np.stack(fields)
        tag = day.strftime("%Y%m%d")
        if n_fine:
            (self.root / "pm25/geoscf").mkdir(parents=True, exist_ok=True)
            p = write_geoscf_pm25(self.root / "pm25/geoscf" / f"geoscf_pm25_{tag}.nc",
                                  times[:n_fine], LAT_025, LON_025, geo[:n_fine])
            self.rec.add(p, "pm25_geoscf", date=day.isoformat())
        three = np.flatnonzero(np.arange(n_coarse) % 3 == 0)
        if three.size:
            (self.root / "pm25/eac4").mkdir(parents=True, exist_ok=True)
            coarse = round_bits(to_075(geo[three]) * np.float32(1e-9), 6)
            p = write_eac4_pm25(self.root / "pm25/eac4" / f"eac4_pm2p5_{tag}.nc", times[three],
                                LAT_075, LON_075, coarse)
            self.rec.add(p, "pm25_eac4", date=day.isoformat())
