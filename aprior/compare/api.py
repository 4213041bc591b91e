"""``compare``: columns of reprocessed L2 files against the original or another set.

The flow: inspect and match every input (errors before any work), stream the selected
pixels orbit by orbit and block by block into the statistics (values spilled to disk,
exact percentiles at the end) and the map sums (constant memory), then write the figures,
``stats.json``, ``stats.csv``, ``maps.nc`` and ``report.html``. Everything is written
into a temporary directory next to the output, renamed into place at the end; on an
error nothing is left behind. Inputs are only read.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import os
import platform
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import numpy as np

from aprior import __version__
from aprior._io import make_staging_dir, probe_writable
from aprior.compare import maps, outputs, reading, report, sources, summarise
from aprior.compare.binning import GridAccumulator, lonlat_grid
from aprior.compare.plan import CompareConfig, Plan, short_label
from aprior.compare.stats import MAX_REGIONS, PixelStats
from aprior.errors import AprioriError, ConfigError, OutputExistsError
from aprior.grids.grid import DOMAIN_BBOX
from aprior.grids.regions import Region, load_region

log = logging.getLogger(__name__)

#: What the model-versus-satellite mode compares (in the report's definitions).
MODEL_NOTE = ("Model versus satellite: the model column is y = Σ_{l≤l_tp} A_trop,l x_l, the "
              "a-priori field's TM5 partial columns x_l seen through the original tropospheric "
              "kernel A_trop,l = A_l M / M_trop; it is compared with the operational column N. "
              "This is equivalent to comparing the model with N recomputed with the model as "
              "a-priori (Eskes & Boersma 2003).")

Progress = Callable[[int, int, Path], None]
"""Called with (orbits done, orbits in all, a file): once with 0 before the first orbit,
then after each orbit with the file just read."""


@dataclass(frozen=True)
class CompareResult:
    """What :func:`compare` made.

    Attributes:
        out_dir: the output directory.
        report: its ``report.html``.
        stats: the statistics dict (as in ``stats.json``, with NaN for undefined values).
    """

    out_dir: Path
    report: Path
    stats: dict = field(repr=False)

    def summary_lines(self) -> list[str]:
        """Three short lines for a terminal: main difference, per region, vs truth."""
        return summarise.summary_lines(self.stats)


def _region_key(spec: str, region: Region) -> str:
    return spec.strip() if region.name == "box" else region.name


def load_regions(specs: Sequence[str]) -> list[tuple[str, Region]]:
    """(key, Region) of each spec, duplicates dropped, in order."""
    out: dict[str, Region] = {}
    for spec in specs:
        region = load_region(spec)
        out.setdefault(_region_key(spec, region), region)
    if len(out) > MAX_REGIONS:
        raise ConfigError(f"at most {MAX_REGIONS} regions can be compared, got {len(out)}")
    return list(out.items())


def _check_out(out_dir: Path, overwrite: bool, inputs: Sequence[Path]) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputExistsError("exists and is not a directory; choose another --out", out_dir)
    if out_dir.exists() and not overwrite:
        raise OutputExistsError("output directory exists; pass --overwrite to replace it",
                                out_dir)
    if not out_dir.parent.is_dir():
        raise AprioriError("the parent of the output directory does not exist", out_dir.parent)
    root = out_dir.resolve()
    for p in inputs:
        if root in p.resolve().parents:
            raise AprioriError("lies inside the output directory, which would be replaced; "
                               "choose another --out", p)
    probe_writable(out_dir.parent)


def _labels(cfg: CompareConfig, primary, against) -> dict[str, str]:
    model = cfg.mode == "model"
    smoothed = " (smoothed)" if model else ""
    labels = {"tm5": "satellite" if model and cfg.tm5_label == "TM5" else cfg.tm5_label,
              "main": cfg.label or short_label(primary[0].apriori_source, "reprocessed") + smoothed}
    if against:
        labels["against"] = cfg.against_label or short_label(against[0].apriori_source,
                                                             "against") + smoothed
        if labels["against"] == labels["main"]:
            labels["against"] += " (against)"
    return labels


def _versions() -> dict[str, str]:
    import h5py
    import matplotlib

    return {"aprior": __version__, "python": platform.python_version(),
            "numpy": np.__version__, "matplotlib": matplotlib.__version__,
            "h5py": h5py.__version__}


def _stream(plan: Plan, cfg: CompareConfig, orbits, regions, stats: PixelStats,
            acc: GridAccumulator, progress: Progress | None) -> dict[str, int]:
    """Feed every selected pixel to the statistics and the maps; pixels per file.

    ``orbits``: (input, --against or None, truth or None) sources, one tuple per orbit.
    """
    x0, y0, x1, y1 = acc.grid.bounds
    boxes = [r.bbox for _, r in regions] + [(x0 - 0.5, y0 - 0.5, x1 + 0.5, y1 + 0.5)]
    within = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes),
              max(b[3] for b in boxes))
    counts: dict[str, int] = {}
    if progress is not None and orbits:
        progress(0, len(orbits), orbits[0][0].path)
    for i, (src, mate, truth) in enumerate(orbits):
        n = 0
        for block in reading.iter_blocks(src, mate, truth, qa_min=cfg.qa_min, within=within):
            values = plan.values(block)
            member = np.column_stack([r.contains(block.lon, block.lat) for _, r in regions])
            stats.add(values, member)
            near = (block.lon >= x0 - 0.5) & (block.lon <= x1 + 0.5) \
                & (block.lat >= y0 - 0.5) & (block.lat <= y1 + 0.5)
            if near.any():
                acc.add(block.lon_bounds[near], block.lat_bounds[near],
                        {k: values[k][near] for k in acc.names})
            n += block.size
        counts[str(src.path)] = n
        log.debug("%s: %d pixels selected", src.path.name, n)
        if progress is not None:
            progress(i + 1, len(orbits), src.path)
    return counts


def _histograms(stats: PixelStats, test: str, ref: str):
    first = stats.regions[0]
    out = []
    for kind in ("abs", "rel"):
        name = f"{kind}:{test}:{ref}"
        lo, hi = stats.percentiles(name, (1.0, 99.0))[first]
        if not (np.isfinite(lo) and np.isfinite(hi)):
            lo, hi = -1.0, 1.0
        if hi <= lo:
            lo, hi = lo - max(1.0, abs(lo)) * 0.01, hi + max(1.0, abs(hi)) * 0.01
        edges = np.linspace(lo, hi, 61)
        out.append((edges, stats.histogram(name, edges)))
    return out


def _figures(stage: Path, plan: Plan, acc: GridAccumulator, stats: PixelStats, regions,
             cfg: CompareConfig) -> list[report.FigureRef]:
    img = stage / "img"
    img.mkdir()
    rows, cols = acc.data_window()
    lon_e = acc.grid.x_edges[cols.start:cols.stop + 1]
    lat_e = acc.grid.y_edges[rows.start:rows.stop + 1]
    frame = maps.MapFrame(lon_e, lat_e, regions)
    lab = plan.labels
    figs: list[report.FigureRef] = []

    def save(fig, name: str, caption: str, section: str) -> None:
        maps.save_png(fig, img / name, dpi=cfg.dpi)
        figs.append(report.FigureRef(f"img/{name}", caption, section))

    means = {lab[s]: acc.mean(f"col:{s}")[rows, cols] for s in plan.sets}
    if plan.truth:
        means[lab["truth"]] = acc.mean("col:truth")[rows, cols]
    save(maps.columns_figure(frame, means, "Mean tropospheric NO2 columns"), "columns.png",
         "Mean tropospheric NO2 columns of each set on the selected pixels.", "columns")
    for test, ref in plan.pairs:
        key = Plan.pair_key(test, ref)
        absolute, relative = summarise.difference_maps(acc, test, ref)
        title = f"{lab[test]} − {lab[ref]}"
        save(maps.difference_figure(frame, absolute[rows, cols], relative[rows, cols], title),
             f"diff_{key}.png", f"Difference of the mean maps, {title}.", key)
        (ea, ca), (er, cr) = _histograms(stats, test, ref)
        save(maps.histogram_figure(ea, ca, er, cr, f"Per-pixel differences, {title}"),
             f"hist_{key}.png", f"Histograms of the per-pixel differences {title} between the "
             f"1st and 99th percentiles of region {stats.regions[0]}.", key)
    if plan.truth:
        biases = {lab[s]: acc.mean(f"bias:{s}")[rows, cols] for s in plan.sets}
        save(maps.bias_figure(frame, biases, "Mean difference to the true column"),
             "truth_bias.png", "Mean column − true column of each set.", "truth")
    return figs


def _write_maps(path: Path, plan: Plan, acc: GridAccumulator, synthetic: bool) -> None:
    rows, cols = acc.data_window()
    col_attrs = {"units": "cm-2", "comment": "NO2 molecules per cm2"}
    variables = {"pixel_area_sum": (acc.sum_w[f"col:{plan.sets[0]}"][rows, cols],
                                    {"units": "km2", "long_name": "sum of the overlap areas of "
                                     "the binned pixel footprints with the cell"})}
    for s in plan.sets + (("truth",) if plan.truth else ()):
        variables[f"column_{s}"] = (acc.mean(f"col:{s}")[rows, cols], {
            **col_attrs, "long_name": f"mean tropospheric NO2 column, {plan.labels[s]}"})
    for test, ref in plan.pairs:
        absolute, relative = summarise.difference_maps(acc, test, ref)
        key = Plan.pair_key(test, ref)
        title = f"{plan.labels[test]} - {plan.labels[ref]}"
        variables[f"difference_{key}"] = (absolute[rows, cols], {
            **col_attrs, "long_name": f"difference of the mean columns, {title}"})
        variables[f"relative_difference_{key}"] = (relative[rows, cols], {
            "units": "%", "long_name": f"relative difference of the mean columns, {title}"})
    if plan.truth:
        for s in plan.sets:
            variables[f"bias_{s}"] = (acc.mean(f"bias:{s}")[rows, cols], {
                **col_attrs, "long_name": f"mean column minus true column, {plan.labels[s]}"})
    attrs = {"title": "aprior compare: gridded mean columns and differences",
             "source": f"aprior {__version__}", "synthetic": "true" if synthetic else "false"}
    outputs.write_maps(path, acc.grid.x_edges[cols.start:cols.stop + 1],
                       acc.grid.y_edges[rows.start:rows.stop + 1], variables, attrs)


def _describe(plan: Plan, primary, against, mode: str = "apriori") -> dict:
    if mode == "model":
        what = ("tropospheric column of the model (the a-priori field) seen through the "
                "original tropospheric averaging kernel")
        sets = {"tm5": {"label": plan.labels["tm5"], "description": "operational tropospheric "
                        "column of the satellite (TM5 a-priori)", "apriori_source": "TM5-MP"},
                "main": {"label": plan.labels["main"], "description": what,
                         "apriori_source": primary[0].apriori_source}}
        if against:
            sets["against"] = {"label": plan.labels["against"], "description": what + " (--against)",
                               "apriori_source": against[0].apriori_source}
        return sets
    sets = {"tm5": {"label": plan.labels["tm5"], "description": "original column (TM5 "
                    "a-priori) of the input files", "apriori_source": "TM5-MP (operational, 1° x 1°)"},
            "main": {"label": plan.labels["main"], "description": "reprocessed column of the "
                     "input files", "apriori_source": primary[0].apriori_source}}
    if against:
        sets["against"] = {"label": plan.labels["against"], "description": "reprocessed "
                           "column of the --against files",
                           "apriori_source": against[0].apriori_source}
    if plan.truth:
        sets["truth"] = {"label": plan.labels["truth"], "description": "true column of the "
                         "synthetic world", "apriori_source": ""}
    return sets


def compare(files: Sequence[str | PathLike[str]], out_dir: str | PathLike[str],
            config: CompareConfig | None = None, progress: Progress | None = None, *,
            against: Sequence[str | PathLike[str]] | None = None,
            truth: Sequence[str | PathLike[str]] | None = None) -> CompareResult:
    """Compare the columns of reprocessed L2 files; write a report directory.

    Args:
        files: reprocessed L2 files (paths, globs or directories), one or many orbits.
        out_dir: the output directory (must not exist unless ``config.overwrite``).
        config: the options; :class:`CompareConfig` defaults when None.
        progress: called after each orbit (see :data:`Progress`).
        against: a second reprocessed set of the same orbits; compared with ``files``.
        truth: per-orbit truth files or directories of a synthetic world.

    Raises:
        AprioriError: naming the file, for a file that is not reprocessed, unmatched or
            mismatched ``against``/truth files, an existing output, no pixel to compare.
    """
    cfg = config or CompareConfig()
    out = Path(out_dir)
    paths = sources.expand_paths(files)
    other = sources.expand_paths(against, what="--against") if against else []
    truth_paths = sources.expand_paths(truth, dir_pattern="*_truth.nc", what="truth") \
        if truth else []
    _check_out(out, cfg.overwrite, [*paths, *other, *truth_paths])
    regions = load_regions(cfg.regions)
    column = sources.SMOOTHED_COLUMN if cfg.mode == "model" else sources.REPROCESSED_COLUMN
    primary = [sources.inspect_reprocessed(p, column) for p in paths]
    sources.one_file_per_orbit(primary, "input")
    mates = sources.pair_against(primary, [sources.inspect_reprocessed(p, column) for p in other]) \
        if other else [None] * len(primary)
    truths = sources.pair_truth(primary, [sources.inspect_truth(p) for p in truth_paths]) \
        if truth_paths else [None] * len(primary)
    plan = Plan.make(_labels(cfg, primary, other and mates), against=bool(other),
                     truth=bool(truth_paths))
    grid = lonlat_grid(cfg.extent or DOMAIN_BBOX, cfg.resolution)
    synthetic = any(s.synthetic for s in [*primary, *(m for m in mates if m is not None)]) \
        or bool(truth_paths)  # truth exists only for synthetic worlds

    stage = make_staging_dir(out)
    try:
        with PixelStats(plan.quantities(), [k for k, _ in regions], stage / ".spill") as stats:
            acc = GridAccumulator(grid, plan.map_names())
            counts = _stream(plan, cfg, list(zip(primary, mates, truths, strict=True)), regions,
                             stats, acc, progress)
            if stats.n_pixels == 0:
                raise AprioriError(f"no pixel with qa_value >= {cfg.qa_min} and finite columns "
                                   "lies in the regions compared; check --qa and --region")
            result = summarise.pixel_statistics(stats, plan)
            result["gridded"] = summarise.gridded_statistics(acc, plan, regions)
            stats_dict = {
                "aprior_version": __version__,
                "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "command": cfg.command or _python_call(paths, out, other, truth_paths),
                "synthetic": synthetic, "report": str(out / "report.html"),
                "settings": {"mode": cfg.mode, "qa_min": cfg.qa_min, "resolution_deg": cfg.resolution,
                             "extent": list(grid.bounds), "percentile_method": "linear"},
                "units": {"column": "molecules cm-2", "relative": "%"},
                "inputs": {"n_files": len(primary), "files": [str(p) for p in paths],
                           "against": [str(p) for p in other],
                           "truth": [str(p) for p in truth_paths],
                           "pixels_selected": int(sum(counts.values())),
                           "pixels_per_file": counts},
                "sets": _describe(plan, primary, other and mates, cfg.mode),
                "regions": {k: {"bbox": list(r.bbox), "polygon": r.polygon is not None}
                            for k, r in regions},
                **result,
            }
            figs = _figures(stage, plan, acc, stats, regions, cfg)
        _write_maps(stage / "maps.nc", plan, acc, synthetic)
        outputs.write_json(stage / "stats.json", stats_dict)
        outputs.write_csv(stage / "stats.csv", stats_dict)
        lines = summarise.summary_lines(stats_dict)
        notes = summarise.NOTES + ((MODEL_NOTE,) if cfg.mode == "model" else ())
        report.write_report(stage / "report.html", stats_dict, figs, lines, _versions(), notes)
        _replace_dir(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    log.info("compare: %d pixels from %d files -> %s", stats_dict["inputs"]["pixels_selected"],
             len(primary), out)
    return CompareResult(out, out / "report.html", stats_dict)


def _python_call(paths, out, other, truth_paths) -> str:
    """The call, as text, when no command line was given (library use)."""
    text = f"aprior.compare.compare({[str(p) for p in paths]!r}, {str(out)!r}"
    if other:
        text += f", against={[str(p) for p in other]!r}"
    if truth_paths:
        text += f", truth={[str(p) for p in truth_paths]!r}"
    return text + ")"


def _replace_dir(stage: Path, out: Path) -> None:
    """Move the finished ``stage`` to ``out``, replacing an existing ``out``."""
    os.chmod(stage, 0o777 & ~_umask())
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
    try:
        os.replace(stage, out)
    except BaseException:
        if old is not None:
            with contextlib.suppress(OSError):
                os.replace(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
