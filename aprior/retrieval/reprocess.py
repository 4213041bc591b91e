"""Reprocess one L2 file with a new a-priori profile field.

The engine streams the granule in scanline blocks so memory stays bounded for a full
orbit:

1. A geolocation pass reads the footprint corners block by block, keeps the pixels
   whose corners fall near the field, and builds the exact area-weight matrix
   ``W (n_pixel, n_cell)`` once for the whole file (:mod:`aprior.retrieval.sampling`,
   :mod:`aprior.retrieval.footprint`).
   It also gives the scanline range that touches the field (for ``crop``).
2. A data pass reads each block, averages the field over every footprint for the two
   field times that bracket the scanline's observation time (``W @ field[t]``, all levels
   at once), interpolates linearly in time, converts the profile to TM5 partial columns
   (:mod:`aprior.retrieval.vertical_fields`, for fields on heights or on pressure),
   recomputes the tropospheric AMF, column, precision and kernel and the model columns
   (:mod:`aprior.retrieval.amf`) and hands the block to the sensor's writer.

Pixels covered less than ``min_coverage`` by the field, and pixels with invalid inputs,
get fill values; they never stop the run.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import numpy as np

from aprior import __version__
from aprior._io import check_output, output_lock
from aprior.a_priori.field import ProfileField, time_coverage, time_coverage_gap
from aprior.errors import ConfigError, InputFileError, ProfileFieldError
from aprior.retrieval.amf import model_columns, replace_apriori
from aprior.retrieval.granule import GranuleInfo, ReprocessedBlock
from aprior.retrieval.protocols import Sensor
from aprior.retrieval.sampling import (  # noqa: F401  (_build_sampler, _near_field_mask: benchmarks)
    _build_sampler,
    _build_samplers,
    _check_seen_values,
    _near_field_mask,
    _Sampler,
)
from aprior.retrieval.vertical import VerticalConfig
from aprior.retrieval.vertical_fields import tm5_partial_columns

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReprocessConfig:
    """Options of ``aprior reprocess`` (each maps to one CLI option).

    Attributes:
        min_coverage: pixels whose footprint is covered less than this fraction by the
            field get fill values (``--min-coverage``).
        block_scanlines: scanlines read and processed at once (``--block-scanlines``).
        crop: write only the scanlines that touch the field (``--crop``).
        overwrite: replace an existing output (``--overwrite``).
        vertical: the heights-to-layers conversion (temperature, extension above the top).
        sensor: sensor plugin name, or None to detect it from the file (``--sensor``).
        profile_source: profile-source plugin name, or None to detect (``--profile-source``).
        allow_single_level: accept a field with one level (``--allow-single-level``); its
            profile shape is then made up by the extension alone.
    """

    min_coverage: float = 0.95
    block_scanlines: int = 256
    crop: bool = False
    overwrite: bool = False
    vertical: VerticalConfig = field(default_factory=VerticalConfig)
    sensor: str | None = None
    profile_source: str | None = None
    allow_single_level: bool = False

    def __post_init__(self) -> None:
        if not 0.0 < self.min_coverage <= 1.0:
            raise ConfigError(f"min_coverage must be in (0, 1], got {self.min_coverage}")
        if self.block_scanlines < 1:
            raise ConfigError(f"block_scanlines must be >= 1, got {self.block_scanlines}")


@dataclass(frozen=True)
class FileSummary:
    """What one reprocessed file came to."""

    input: str
    output: str
    n_pixels: int
    n_in_field: int
    n_reprocessed: int
    median_column_ratio: float
    seconds: float
    #: auxiliary input -> (reprocessed pixels inside it, reprocessed pixels), for
    #: ``temperature``, ``pm25`` and ``upper_profiles`` when given
    aux_coverage: dict[str, tuple[int, int]] = field(default_factory=dict)


def reprocess_file(
    path: str | PathLike[str],
    out: str | PathLike[str],
    fld: ProfileField,
    sensor: Sensor,
    config: ReprocessConfig = ReprocessConfig(),
    *,
    upper: ProfileField | None = None,
    pm25=None,
    temperature=None,
    command: str = "aprior reprocess",
    aux_paths: dict[str, str] | None = None,
) -> FileSummary:
    """Reprocess the L2 file ``path`` with the a-priori field ``fld`` into ``out``.

    Args:
        path: input L2 file (opened read-only, never modified).
        out: output file; refused if it exists and ``config.overwrite`` is false.
        fld: the new a-priori, ``(t, z, y, x)`` ug m-3 at heights above ground.
        sensor: the sensor plugin that reads and writes the file.
        config: options.
        upper: optional field used above ``fld``'s top level (``extension="upper_field"``).
        pm25: optional PM2.5 field sampled at pixel centres into ``pm25_context``
            (an object accepted by :func:`aprior.inputs.pm25.sample_pm25`).
        temperature: optional :class:`aprior.inputs.temperature.TemperatureField`; its
            layer temperatures replace the standard-atmosphere profile in the
            hypsometric heights (pixels outside it keep the default).
        command: the command line, recorded in the output's ``history``.
        aux_paths: the files of ``temperature``, ``pm25`` and ``upper`` (keys
            ``temperature``, ``pm25``, ``upper_profiles``), named in error messages.

    An auxiliary input must cover the orbit's observation times and at least one
    reprocessed pixel, or the file is refused; pixels outside a partly covering one use the
    fallback that :attr:`FileSummary.aux_coverage` counts (standard atmosphere, fill).

    Returns:
        A :class:`FileSummary`.
    """
    t0 = time.perf_counter()
    path = Path(path)
    if config.vertical.extension == "upper_field" and upper is None:
        raise ConfigError("extension 'upper_field' needs an upper profile file (--upper-profiles)")
    if upper is not None and upper.heights is None:
        raise ConfigError("the upper profile field (--upper-profiles) must be on heights; a field on "
                          "pressure levels extends itself ('constant_vmr')")
    if fld.pressure is not None and config.vertical.extension == "upper_field":
        raise ConfigError(f"--extension upper_field is for fields on heights; this field is on "
                          f"{fld.vertical_kind}: use constant_vmr or zero")
    if fld.nz == 1 and not config.allow_single_level:
        raise ProfileFieldError(
            "the profile field has a single level, so it gives no profile shape (the AMF would "
            "come from the extension alone); use a multi-level field, or --allow-single-level "
            "to accept it", fld.path or path)
    with output_lock(out):
        out = check_output(out, overwrite=config.overwrite, inputs=(path,))
        return _reprocess_locked(path, out, fld, sensor, config, upper, pm25, temperature,
                                 command, t0, aux_paths or {})


def _reprocess_locked(path: Path, out: Path, fld: ProfileField, sensor: Sensor,
                      config: ReprocessConfig, upper: ProfileField | None, pm25, temperature,
                      command: str, t0: float, aux_paths: dict[str, str]) -> FileSummary:
    info = sensor.open(path)
    block = config.block_scanlines

    samplers = _build_samplers(sensor, info, [fld] if upper is None else [fld, upper], block)
    sampler = samplers[0]
    upper_sampler = samplers[1] if upper is not None else None
    npix = info.n_ground_pixel
    touched = sampler.coverage.reshape(info.n_scanline, npix) > 0
    rows_touched = np.flatnonzero(touched.any(axis=1))
    if rows_touched.size == 0:
        raise ProfileFieldError(f"the profile field ({fld.path or fld.source}) does not overlap this orbit", path)
    _check_seen_values(fld, sampler.weights, path)
    scanlines = (int(rows_touched[0]), int(rows_touched[-1]) + 1) if config.crop else None
    first, last = scanlines if scanlines else (0, info.n_scanline)
    log.info("%s: %d pixels touch the field, scanlines %d-%d", path.name, int(touched.sum()), first, last)

    history = f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} aprior {__version__}: {command}"
    source = fld.source if fld.path is None else f"{fld.source} ({Path(fld.path).name})"
    n_done = 0
    ratios: list[np.ndarray] = []
    objs = {"temperature": temperature, "pm25": pm25, "upper_profiles": upper}
    where = {k: aux_paths.get(k) or _aux_path(v) or k for k, v in objs.items()}
    aux: dict[str, list[int]] = {name: [0, 0] for name, given in
                                 (("temperature", temperature), ("pm25", pm25), ("upper_profiles", upper))
                                 if given is not None}
    with sensor.writer(info, out, scanlines=scanlines, history=history, apriori_source=source,
                       with_pm25=pm25 is not None) as writer:
        for start in range(first, last, block):
            stop = min(start + block, last)
            res, ratio = _process_block(sensor, info, start, stop, sampler, upper_sampler, config,
                                        pm25, temperature, aux, where)
            writer.write_block(res)
            n_done += int(np.isfinite(res.no2_trop).sum())
            ratios.append(ratio)
        _check_aux_coverage(aux, where, info.path)
    allr = np.concatenate(ratios) if ratios else np.empty(0)
    med = float(np.median(allr)) if allr.size else float("nan")
    return FileSummary(str(path), str(out), info.n_scanline * npix, int(touched.sum()), n_done, med,
                       time.perf_counter() - t0, {k: (v[0], v[1]) for k, v in aux.items()})


def _aux_path(obj) -> str | None:
    return getattr(obj, "path", None)


def _check_aux_coverage(aux: dict[str, list[int]], where: dict[str, str], granule: str) -> None:
    """Refuse an auxiliary input that covers none of the reprocessed pixels; log partial ones.

    Raised inside the writer's context, so no output is left behind.
    """
    for name, (inside, total) in aux.items():
        if total and inside == 0:
            raise InputFileError(f"--{name.replace('_', '-')} does not cover this orbit: none of "
                                 f"the {total:,} reprocessed pixels of {Path(granule).name} lies "
                                 "in its region", where[name])
        if inside < total:
            log.warning("%s covers %d of %d reprocessed pixels of %s; the others use %s", where[name],
                        inside, total, Path(granule).name, _AUX_FALLBACK[name])


#: what a pixel outside an auxiliary input gets
_AUX_FALLBACK = {"temperature": "the standard-atmosphere temperature profile",
                 "pm25": "a fill value in pm25_context",
                 "upper_profiles": "fill values (no profile above the field's top)"}


def _check_aux_time(name: str, times: np.ndarray | None, obs: np.ndarray, path: str | None,
                    granule: str) -> None:
    """Refuse an auxiliary input whose times do not cover the observation times ``obs``."""
    if time_coverage_gap(times, obs) is None:
        return
    lo, hi = time_coverage(times)
    obs = obs[~np.isnat(obs)]
    raise InputFileError(f"--{name.replace('_', '-')} covers {times[0]} to {times[-1]} (it stands "
                         f"for {lo} to {hi}), but {Path(granule).name} was observed at "
                         f"{obs.min()}; give the file of the orbit's date", path or name)


def _layer_temperatures(temperature, info: GranuleInfo, ps: np.ndarray, lon: np.ndarray,
                        lat: np.ndarray, obs_time: np.ndarray) -> np.ndarray:
    """(n, 34) layer-mean temperatures (K) from a temperature field, NaN outside it."""
    from aprior.inputs.temperature import layer_temperatures

    p_int = info.tm5_a[None, :, :] + info.tm5_b[None, :, :] * ps[:, None, None]  # (n, 34, 2)
    p_mid = 0.5 * (p_int[..., 0] + p_int[..., 1])
    return layer_temperatures(temperature, lon, lat, obs_time, p_mid)


def _process_block(sensor: Sensor, info: GranuleInfo, start: int, stop: int, sampler: _Sampler,
                   upper_sampler: _Sampler | None, config: ReprocessConfig,
                   pm25, temperature=None, aux: dict[str, list[int]] | None = None,
                   where: dict[str, str] | None = None) -> tuple[ReprocessedBlock, np.ndarray]:
    """Compute the reprocessed fields of scanlines [start, stop).

    Returns the block and the finite ratios new/old column of its reprocessed pixels.
    ``aux`` (auxiliary input -> [pixels inside it, pixels]) is updated with the block's
    reprocessed pixels.
    """
    aux = {} if aux is None else aux
    p = info.n_ground_pixel
    s = stop - start
    n = s * p
    rows = slice(start * p, stop * p)
    cov = sampler.coverage[rows]
    use = cov >= config.min_coverage - 1e-12
    if not use.any() and pm25 is None:  # nothing to compute: do not even read the block
        nan2, nan3 = np.full((s, p), np.nan), np.full((s, p, 34), np.nan)
        return ReprocessedBlock(start=start, stop=stop, no2_trop=nan2, no2_trop_precision=nan2,
                                amf_trop=nan2, averaging_kernel_trop=nan3, apriori_partial_columns=nan3,
                                coverage_fraction=cov.reshape(s, p)), np.empty(0)
    g = sensor.read_block(info, start, stop)
    for smp in (sampler, upper_sampler):
        if smp is not None and time_coverage_gap(smp.field.times, g.time[np.any(use.reshape(s, p), axis=1)]) is not None:
            t, (lo, hi) = smp.field.times, time_coverage(smp.field.times)
            raise ProfileFieldError(
                f"the profile field ({smp.field.path or smp.field.source}) covers {t[0]} to {t[-1]} "
                f"(it stands for {lo} to {hi}), "
                f"but scanlines {start}-{stop} were observed at {g.time[0]}; use a field valid at the orbit's time",
                info.path)
    obs_time = np.repeat(g.time, p)
    used_times = g.time[np.any(use.reshape(s, p), axis=1)]
    for name, obj in (("temperature", temperature), ("pm25", pm25)):
        if obj is not None and used_times.size:
            _check_aux_time(name, obj.times, used_times, (where or {}).get(name), info.path)

    x = np.full((n, 34), np.nan)
    amf_new = np.full(n, np.nan)
    col_new = np.full(n, np.nan)
    prec_new = np.full(n, np.nan)
    ak_new = np.full((n, 34), np.nan)
    col_model = np.full(n, np.nan)
    col_smoothed = np.full(n, np.nan)
    idx = np.flatnonzero(use)
    ratio = np.empty(0)
    if idx.size:
        sub = slice(int(idx[0]) + rows.start, int(idx[-1]) + 1 + rows.start)
        prof = sampler.column_profiles(sub, obs_time[idx[0]: idx[-1] + 1]).take(idx - idx[0])
        upper = None
        if upper_sampler is not None:
            up = upper_sampler.profiles(sub, obs_time[idx[0]: idx[-1] + 1])[idx - idx[0]]
            upper = (up, upper_sampler.field.heights)
            inside = upper_sampler.coverage[rows][idx] >= config.min_coverage - 1e-12
            aux["upper_profiles"][0] += int(inside.sum())
            aux["upper_profiles"][1] += idx.size
        ps = g.surface_pressure.reshape(n)[idx].astype(np.float64)
        # pixels inside a given temperature field use it, the others the standard atmosphere
        have = np.zeros(idx.size, dtype=bool)
        temp = None
        if temperature is not None:
            temp = _layer_temperatures(temperature, info, ps, g.longitude.reshape(n)[idx],
                                       g.latitude.reshape(n)[idx], obs_time[idx])
            have = np.all(np.isfinite(temp), axis=1)
            aux["temperature"][0] += int(have.sum())
            aux["temperature"][1] += idx.size
        xi = np.empty((idx.size, 34))
        for sel, t in ((~have, None), (have, temp)):
            if sel.any():
                up = None if upper is None else (upper[0][sel], upper[1])
                xi[sel] = tm5_partial_columns(prof.take(sel), ps[sel], info.tm5_a, info.tm5_b,
                                              config=config.vertical,
                                              temperature=None if t is None else t[sel], upper=up)
        kernel_args = (g.averaging_kernel.reshape(n, -1)[idx].astype(np.float64),
                       g.amf_total.reshape(n)[idx].astype(np.float64),
                       g.amf_trop.reshape(n)[idx].astype(np.float64),
                       g.tropopause_index.reshape(n)[idx])
        res = replace_apriori(
            *kernel_args, xi,
            g.no2_trop.reshape(n)[idx].astype(np.float64),
            g.no2_trop_precision.reshape(n)[idx].astype(np.float64),
        )
        cols = model_columns(*kernel_args, xi)
        col_model[idx] = np.where(res.valid, cols.tropospheric, np.nan)
        col_smoothed[idx] = np.where(res.valid, cols.smoothed, np.nan)
        x[idx] = xi
        amf_new[idx] = res.amf_trop
        col_new[idx] = res.no2_trop
        prec_new[idx] = res.no2_trop_precision
        ak_new[idx] = res.averaging_kernel_trop
        x[idx[~res.valid]] = np.nan
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = res.no2_trop / g.no2_trop.reshape(n)[idx]
        ratio = ratio[np.isfinite(ratio)]

    pm = None
    if pm25 is not None:
        from aprior.inputs.pm25 import sample_pm25

        pm = sample_pm25(pm25, g.longitude.reshape(n), g.latitude.reshape(n), obs_time).reshape(s, p)
        aux["pm25"][0] += int(np.isfinite(pm.reshape(n)[idx]).sum())
        aux["pm25"][1] += idx.size
    return ReprocessedBlock(
        start=start, stop=stop,
        no2_trop=col_new.reshape(s, p), no2_trop_precision=prec_new.reshape(s, p),
        amf_trop=amf_new.reshape(s, p), averaging_kernel_trop=ak_new.reshape(s, p, 34),
        apriori_partial_columns=x.reshape(s, p, 34), coverage_fraction=cov.reshape(s, p),
        pm25_context=pm,
        apriori_tropospheric_column=col_model.reshape(s, p),
        apriori_tropospheric_column_smoothed=col_smoothed.reshape(s, p),
    ), ratio
