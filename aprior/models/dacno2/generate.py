"""Generating DACNO2 a-priori profile fields: one day's inputs -> patches -> merged field.

:func:`generate_day` builds the day's inputs from the raw files of a data directory (or
the bundled demo world), predicts every patch, merges them with the periodic 2D Hann
window and restores the layer ratios; :func:`write_profile` writes the result as the CF
profile field that ``aprior reprocess --profiles`` reads, with provenance attributes.

Time stamps follow the synthetic truth's convention (:mod:`aprior.synth.world`):
a DACNO2-S5P field (variant "s5p", the mean of 11, 12 and 13 UTC) is stamped 12:00 UTC of
its day, the centre of the window; a daily-mean field 00:00 UTC.

Everything made with weights trained on a synthetic world, or from a synthetic world's
inputs, says SYNTHETIC in its attributes.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from aprior import __version__
from aprior._io import check_output
from aprior.a_priori.cf_field import write_cf_field
from aprior.a_priori.field import ProfileField
from aprior.errors import ConfigError, InputFileError
from aprior.models.dacno2.catalog import DataCatalog, as_date, file_dates, open_catalog
from aprior.models.dacno2.dataset import build_inputs
from aprior.models.dacno2.predict import TrainedModel, default_world, load_trained, predict_field

log = logging.getLogger(__name__)

#: variant -> (model name, time of the stamp after 00 UTC, time reduction, window)
VARIANT_TIME = {
    "s5p": ("DACNO2-S5P", np.timedelta64(12, "h"), "mean of 11, 12 and 13 UTC",
            "11:00-13:00 UTC (hourly values starting at 11, 12 and 13 UTC)"),
    "daily": ("DACNO2", np.timedelta64(0, "h"), "daily mean (UTC day)", "00:00-24:00 UTC"),
}
SYNTHETIC_NOTE = ("SYNTHETIC: {what}. This field is not a product of real data and must never "
                  "be presented as one.")


def field_name(date: dt.date, variant: str = "s5p") -> str:
    """The file name of a day's field in a range (``dacno2_s5p_no2_YYYYMMDD.nc``)."""
    return f"dacno2_{variant}_no2_{date.strftime('%Y%m%d')}.nc"


def provenance(trained: TrainedModel, catalog: DataCatalog, date: dt.date) -> dict:
    """Global attributes recording how a field was made (model, weights, data, window)."""
    name, _, reduction, window = VARIANT_TIME[trained.spec.variant]
    meta = trained.metadata
    prov = {
        "title": f"{name} a-priori NO2 profiles (2 km)",
        "source": f"{name} (aprior {__version__})",
        "model": name, "model_phase": meta.get("phase", "unknown"), "model_preset": trained.preset,
        "weights": trained.path.name, "weights_sha256": trained.sha256,
        "trained_on": meta.get("trained_on", "unknown"),
        "date": date.isoformat(), "time_window": window, "time_reduction": reduction,
        "input_data": catalog.describe(),
        "layer_ratios": np.asarray(trained.ratios.ratios, dtype=np.float64),
        "patches": f"{trained.spec.patch} x {trained.spec.patch} cells of 2 km, merged with a "
                   "periodic 2D Hann window",
    }
    notes = []
    if trained.synthetic:
        notes.append("the DACNO2 weights were trained on SYNTHETIC data (aprior synth)")
    if catalog.synthetic:
        notes.append("the input data are a SYNTHETIC world (aprior synth)")
    if notes:
        prov["synthetic"] = "true"
        prov["comment"] = SYNTHETIC_NOTE.format(what="; ".join(notes))
    return prov


def _resolve(data: str | os.PathLike[str] | DataCatalog | None,
             weights: str | os.PathLike[str] | TrainedModel | None,
             device: str) -> tuple[DataCatalog, TrainedModel]:
    catalog = data if isinstance(data, DataCatalog) else open_catalog(
        default_world() if data is None else data)
    trained = weights if isinstance(weights, TrainedModel) else load_trained(weights, device)
    return catalog, trained


def generate_day(date: dt.date | str, *, data: str | os.PathLike[str] | DataCatalog | None = None,
                 weights: str | os.PathLike[str] | TrainedModel | None = None,
                 device: str = "auto") -> ProfileField:
    """One day's DACNO2 field on the data's 2 km region grid.

    Args:
        date: the UTC day.
        data: a synthetic world or real-data directory (or an open catalog); None for the
            bundled demo world ``fixtures/world``.
        weights: a weights file or run directory (or a loaded model); None for the bundled
            demo weights (trained on a SYNTHETIC world).
        device: "auto", "cpu", "cuda" or "cuda:N".

    Returns:
        a :class:`ProfileField`: ``no2`` ``(1, Z, ny, nx)`` float32 ug m-3, heights the
        model's levels (m), one time (12:00 UTC for DACNO2-S5P), ``attrs`` the provenance.

    Raises:
        InputFileError: an input of the day is missing or unreadable; bad weights.
    """
    day = as_date(date)
    catalog, trained = _resolve(data, weights, device)
    items = build_inputs(catalog, day, trained.spec, catalog.grid, trained.stats)
    no2 = predict_field(trained, items, catalog.grid)
    _, offset, _, _ = VARIANT_TIME[trained.spec.variant]
    t = np.datetime64(day.isoformat(), "ns") + offset
    prov = provenance(trained, catalog, day)
    log.info("generated %s for %s: %s, surface mean %.3g ug m-3", prov["model"], day,
             "x".join(map(str, no2.shape)), float(no2[0].mean()))
    return ProfileField(no2[None], trained.levels_m.copy(), catalog.grid,
                        np.array([t], dtype="datetime64[ns]"), source=prov["source"], attrs=prov)


def write_profile(path: str | os.PathLike[str], field: ProfileField,
                  provenance: dict | None = None) -> Path:
    """Write a generated field as a CF profile field (atomically); ``provenance`` adds to
    (and wins over) ``field.attrs``. Returns the path."""
    return write_cf_field(path, field, attrs={**field.attrs, **(provenance or {})})


def day_range(start: dt.date | str, end: dt.date | str | None = None,
              days: int | None = None) -> list[dt.date]:
    """``start`` .. ``end`` inclusive, or ``days`` days from ``start``."""
    a = as_date(start)
    if (end is None) == (days is None):
        raise ConfigError("give either an end date or a number of days")
    if days is not None:
        if days < 1:
            raise ConfigError(f"--days must be at least 1, got {days}")
        return [a + dt.timedelta(days=k) for k in range(days)]
    b = as_date(end)
    if b < a:
        raise ConfigError(f"the end date {b} is before the start date {a}")
    return [a + dt.timedelta(days=k) for k in range((b - a).days + 1)]


def generate_days(dates: Iterable[dt.date | str], out_dir: str | os.PathLike[str], *,
                  data: str | os.PathLike[str] | None = None,
                  weights: str | os.PathLike[str] | None = None, device: str = "auto",
                  overwrite: bool = False,
                  progress: Callable[[dt.date, int, int], None] | None = None) -> list[Path]:
    """Generate and write one file per day into ``out_dir`` (created); names from
    :func:`field_name`. Every input date and output is checked before any work."""
    days = [as_date(d) for d in dates]
    catalog, trained = _resolve(data, weights, device)
    catalog.check_dates(days)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError("with several days --out must be a directory", out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / field_name(d, trained.spec.variant) for d in days]
    for p in paths:
        check_output(p, overwrite=overwrite)
    for k, (day, path) in enumerate(zip(days, paths, strict=True)):
        write_profile(path, generate_day(day, data=catalog, weights=trained))
        if progress is not None:
            progress(day, k + 1, len(days))
    return paths


# -- PM2.5 (DeepCAMS) -------------------------------------------------------------------
def eac4_files_for(data: str | os.PathLike[str], date: dt.date) -> tuple[list[Path], bool]:
    """The EAC4(-like) files of ``date`` and the next day in a synthetic world (kind
    ``pm25_eac4``) and whether they are synthetic. InputFileError if there are none."""
    root = Path(data)
    if not (root / "manifest.json").is_file():
        raise InputFileError("is not a synthetic world; give the EAC4 PM2.5 files with --eac4",
                             root)
    from aprior.inputs.world import open_world

    world = open_world(root)
    wanted = {date, date + dt.timedelta(days=1)}
    files = [p for p in world.files("pm25_eac4") if set(file_dates(p)) & wanted]
    if not any(date in file_dates(p) for p in files):
        raise InputFileError(f"has no EAC4-like PM2.5 file for {date} (make the world with "
                             "--eac4-hours covering it)", root)
    return files, True


def generate_pm25(date: dt.date | str, eac4_files: list[Path], out: str | os.PathLike[str], *,
                  synthetic_input: bool = False, temporal_weights: Path | None = None,
                  spatial_weights: Path | None = None, device: str = "auto",
                  temporal: str | None = None, spatial: str | None = None,
                  progress=None) -> Path:
    """Downscale the day's EAC4 PM2.5 to hourly 0.25 degree with DeepCAMS' default pipeline
    (or the given methods) and write it (:func:`aprior.models.deepcams.downscale.downscale_files`);
    ``progress`` gets the downscaling's progress events."""
    from aprior.models.deepcams import downscale as dc

    pipeline = dc.load_pipeline(temporal or dc.DEFAULT_TEMPORAL, spatial or dc.DEFAULT_SPATIAL,
                                temporal_weights, spatial_weights, device)
    dc.downscale_files(as_date(date), list(eac4_files), out, pipeline,
                       synthetic_input=synthetic_input, progress=progress)
    return Path(out)
