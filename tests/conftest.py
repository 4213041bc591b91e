"""Shared fixtures: small synthetic L2 files and matching profile fields, built in code."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from aprior.a_priori.field import ProfileField
from aprior.grids.grid import LAEA_EUROPE, Grid

LEVELS = np.array([0, 50, 250, 500, 1000, 2000, 3000, 5000], dtype=np.float64)


@dataclass(frozen=True)
class World:
    """A small L2 file made from a known field, and that field on disk."""

    l2: Path
    field_path: Path
    field: ProfileField
    truth_column: np.ndarray  # (s, p) mol m-2, NaN outside the field
    tropopause: np.ndarray  # (s, p)


def make_field(seed: int = 0, times: np.ndarray | None = None, grid: Grid | None = None) -> ProfileField:
    """A 2 km EPSG:3035 field around Brussels with a few 'cities', (t, 8, y, x) ug m-3."""
    g = grid or Grid(LAEA_EUROPE, 3_800_000.0, 3_000_000.0, 2000.0, 2000.0, 160, 140)
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.arange(g.ny), np.arange(g.nx), indexing="ij")
    surf = 3.0 + 2.0 * np.sin(xx / 17.0) ** 2
    for _ in range(8):
        cx, cy = rng.uniform(10, g.nx - 10), rng.uniform(10, g.ny - 10)
        surf = surf + rng.uniform(10, 40) * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * rng.uniform(1.5, 5) ** 2))
    shape = np.exp(-LEVELS / 900.0)[:, None, None] + 0.02
    nt = 1 if times is None else len(times)
    no2 = np.stack([surf[None] * shape * (1.0 + 0.3 * k) for k in range(nt)]).astype(np.float32)
    return ProfileField(no2, LEVELS.copy(), g, times, source="test field")


def lonlat_center(g: Grid) -> tuple[float, float]:
    from pyproj import Transformer

    tr = Transformer.from_crs(g.crs, "EPSG:4326", always_xy=True)
    x0, y0, x1, y1 = g.bounds
    lon, lat = tr.transform((x0 + x1) / 2, (y0 + y1) / 2)
    return float(lon), float(lat)


def build_world(tmp: Path, *, n_scanline: int = 80, n_pixel: int = 450, field: ProfileField | None = None,
                seed: int = 0, name: str = "world") -> World:
    """Write a field and an L2 file whose columns are consistent with that field as truth."""
    from aprior.a_priori.cf_field import write_cf_field
    from aprior.retrieval.footprint import apply, footprint_weights
    from aprior.retrieval.vertical import partial_columns
    from aprior.synth.s5p import l2 as syn

    fld = field or make_field(seed)
    fpath = tmp / f"{name}_field.nc"
    write_cf_field(fpath, fld)
    a, b = syn.tm5_hybrid_coefficients()
    lon_c, lat_c = lonlat_center(fld.grid)
    geom = syn.synthetic_swath(n_scanline, n_pixel, start_time=np.datetime64("2023-06-15T12:20:00"),
                               center_lon=lon_c, start_lat=lat_c - n_scanline * 5.5 / 2 / 111.0)
    s, p = geom.latitude.shape
    n = s * p
    rng = np.random.default_rng(seed + 1)
    ps = (100500.0 + 800.0 * rng.standard_normal((s, p))).astype(np.float32)
    pmid = 0.5 * ((a[:, 0] + a[:, 1])[None, :] + (b[:, 0] + b[:, 1])[None, :] * ps.reshape(n, 1))
    m = syn.box_amf_model(pmid, ps.reshape(n), sza=geom.sza.reshape(n), vza=geom.vza.reshape(n),
                          albedo=np.full(n, 0.05), cloud_fraction=np.zeros(n), cloud_pressure=np.full(n, 70000.0))
    fw = footprint_weights(geom.longitude_bounds.reshape(n, 4), geom.latitude_bounds.reshape(n, 4), fld.grid)
    conc = apply(fw, fld.no2[0].reshape(fld.nz, -1).T)
    conc_t = np.where(np.isfinite(conc), conc, 1.0)
    truth = partial_columns(conc_t, fld.heights, ps.reshape(n).astype(np.float64), a, b)
    layer = np.arange(34)
    tm5 = 4e-6 * np.exp(-layer / 8.0)[None, :] * np.ones((n, 1))
    tp = np.full(n, 17, dtype=np.int32)
    truth = np.where(np.isfinite(conc[:, :1]), truth, tm5)
    l2 = syn.write_synthetic_l2(tmp, geom, orbit=30000,
                                box_amf=m.reshape(s, p, 34), apriori_tm5=tm5.reshape(s, p, 34),
                                truth=truth.reshape(s, p, 34), tropopause_index=tp.reshape(s, p),
                                surface_pressure=ps, tm5_a=a, tm5_b=b, qa_value=np.full((s, p), 1.0))
    tcol = np.where(fw.coverage >= 0.95, truth[:, :18].sum(axis=1), np.nan).reshape(s, p)
    return World(Path(l2), fpath, fld, tcol, tp.reshape(s, p))


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> World:
    return build_world(tmp_path_factory.mktemp("world"))


def dacno2_tiny_world(tmp_path_factory) -> Path:
    """A 48 x 48-cell synthetic world of four days across a year boundary, made once per
    session (the DACNO2 training and CLI tests share it)."""
    import datetime as dt

    from aprior.synth import SynthConfig, generate_world

    root = tmp_path_factory.getbasetemp() / "dacno2-tiny-world"
    if not (root / "manifest.json").is_file():
        cfg = SynthConfig(region=(4.3, 50.6, 5.3, 51.3), start=dt.date(2022, 12, 30),
                          end=dt.date(2023, 1, 2), pm25_hours=0, s5p=False, margin_km=32,
                          spinup_hours=3, static_resolution_m=1000)
        generate_world(root, cfg)
    return root


def command_app(*registers):
    """A typer app with the commands that each ``register(app)`` adds, kept as named
    subcommands by a root callback (what ``aprior``'s own app does)."""
    import typer

    app = typer.Typer()
    for register in registers:
        register(app)

    @app.callback()
    def _root() -> None:
        """test app"""

    return app

