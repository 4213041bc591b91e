"""``aprior reprocess``: recompute TROPOMI NO2 columns with a new a-priori."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from aprior.cli._common import (
    OVERWRITE_HELP,
    QUIET_HELP,
    VERBOSE_HELP,
    command_line,
    config_defaults,
    console,
    fail,
    handle_errors,
    progress_bar,
    setup_logging,
)
from aprior.config import from_dict
from aprior.retrieval.batch import FileResult, Job, expand_inputs, plan_outputs, run_jobs
from aprior.retrieval.reprocess import ReprocessConfig


def _summary_table(results: list[FileResult]) -> Table:
    table = Table(title="aprior reprocess", show_lines=False)
    table.add_column("file", overflow="fold")
    table.add_column("status")
    table.add_column("pixels reprocessed", justify="right")
    table.add_column("median new/old", justify="right")
    table.add_column("s", justify="right")
    table.add_column("reason", overflow="fold")
    for r in results:
        if r.ok and r.summary is not None:
            s = r.summary
            table.add_row(Path(r.input).name, "ok", f"{s.n_reprocessed:,} / {s.n_in_field:,}",
                          f"{s.median_column_ratio:.3f}", f"{s.seconds:.1f}", "")
        else:
            reason = (r.error or "").removeprefix(f"{r.input}: ")
            table.add_row(Path(r.input).name, "failed", "", "", "", escape(reason))
    return table


#: every option of the command, as its parameter name (also the keys of a --config file)
OPTIONS = ("profiles", "out", "min_coverage", "crop", "overwrite", "extension", "upper_profiles",
           "pm25", "temperature", "threads", "scheduler", "block_scanlines", "sensor",
           "profile_source", "vertical", "allow_single_level")
#: ReprocessConfig fields that come straight from an option
_CONFIG_FIELDS = ("min_coverage", "crop", "overwrite", "block_scanlines", "sensor", "profile_source",
                  "allow_single_level")


def _resolve(cli: dict, config: Path | None) -> dict:
    """Explicit options over the --config file's [reprocess] table."""
    base = config_defaults(config, "reprocess", set(OPTIONS) | {"workers"})
    if "workers" in base:
        base.setdefault("threads", base.pop("workers"))
    return {k: (v if v is not None else base.get(k)) for k, v in cli.items()} | \
        {"vertical": base.get("vertical", {})}


def register(app: typer.Typer) -> None:
    @app.command("reprocess")
    @handle_errors
    def reprocess(
        files: list[str] = typer.Argument(..., help="S5P L2 NO2 files or globs.", show_default=False),
        profiles: Path = typer.Option(None, "--profiles", "-p", help="3D NO2 field: any CF netCDF NO2 field, or WRF-Chem, GEOS-Chem, CAMS global/EAC4, CAMS European, LOTOS-EUROS output (see docs/reprocess.md). Required (here or in --config).", show_default=False),
        out: Path = typer.Option(None, "--out", "-o", help="Output file (one input) or directory (several inputs; files keep their names, two inputs of the same name are refused). Required (here or in --config).", show_default=False),
        min_coverage: float = typer.Option(None, "--min-coverage", help="Pixels covered less than this fraction by the field get fill values. (default: 0.95)", show_default=False),
        crop: bool = typer.Option(None, "--crop/--no-crop", help="Write only the scanlines that touch the field. (default: no-crop)", show_default=False),
        overwrite: bool = typer.Option(None, "--overwrite", help=OVERWRITE_HELP, show_default=False),
        extension: str = typer.Option(None, "--extension", help="Profile above the field's top level: constant_vmr, upper_field or zero. (default: constant_vmr)", show_default=False),
        upper_profiles: Path = typer.Option(None, "--upper-profiles", help="Field used above the top level (with --extension upper_field).", show_default=False),
        pm25: Path = typer.Option(None, "--pm25", help="PM2.5 field sampled at pixel centres into APRIORI_REPLACEMENT/pm25_context.", show_default=False),
        temperature: Path = typer.Option(None, "--temperature", help="ERA5 pressure-level file whose temperature 't' replaces the standard atmosphere in the layer heights.", show_default=False),
        threads: int = typer.Option(None, "--threads", "--workers", "-j", help="Worker processes, one thread each, for many files (0: one per core, at most one per file). (default: 0)", show_default=False),
        scheduler: str = typer.Option(None, "--scheduler", help="Address of an existing dask scheduler instead of a local cluster.", show_default=False),
        block_scanlines: int = typer.Option(None, "--block-scanlines", help="Scanlines processed at once. (default: 256)", show_default=False),
        sensor: str = typer.Option(None, "--sensor", help="Sensor plugin (see 'aprior plugins'); detected by default.", show_default=False),
        profile_source: str = typer.Option(None, "--profile-source", help="Profile-source plugin; detected by default.", show_default=False),
        allow_single_level: bool = typer.Option(None, "--allow-single-level", help="Accept a field with a single level (e.g. a CAMS 'surface' download): its profile shape then comes from the extension alone. Refused by default.", show_default=False),
        config: Path = typer.Option(None, "--config", help="TOML file with a [reprocess] table whose keys are these long option names (min-coverage or min_coverage); explicit options override it.", show_default=False),
        verbose: int = typer.Option(0, "--verbose", "-v", count=True, help=VERBOSE_HELP),
        quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
    ) -> None:
        """Recompute tropospheric NO2 columns, AMFs and kernels with a new a-priori field.

        The output keeps everything of the input and adds the *_reprocessed variables and the
        PRODUCT/SUPPORT_DATA/APRIORI_REPLACEMENT group. Inputs are never modified.
        """
        setup_logging(verbose, quiet)
        o = _resolve(dict(profiles=profiles, out=out, min_coverage=min_coverage, crop=crop,
                          overwrite=overwrite, extension=extension, upper_profiles=upper_profiles,
                          pm25=pm25, temperature=temperature, threads=threads, scheduler=scheduler,
                          block_scanlines=block_scanlines, sensor=sensor,
                          profile_source=profile_source, allow_single_level=allow_single_level), config)
        for name in ("profiles", "out"):
            if o[name] is None:
                fail(f"missing option --{name} (give it on the command line or in --config)")
        cfg = from_dict(ReprocessConfig, {k: o[k] for k in _CONFIG_FIELDS if o[k] is not None}
                        | ({"vertical": o["vertical"]} if o["vertical"] else {}),
                        source=str(config) if config else None)
        vert = cfg.vertical
        if o["extension"] is not None:
            if o["extension"] not in ("constant_vmr", "upper_field", "zero"):
                fail(f"--extension must be constant_vmr, upper_field or zero, not {o['extension']!r}")
            vert = replace(vert, extension=o["extension"])
        elif o["upper_profiles"] is not None:
            vert = replace(vert, extension="upper_field")
        cfg = replace(cfg, vertical=vert)
        paths = {k: None if o[k] is None else Path(o[k])
                 for k in ("profiles", "upper_profiles", "pm25", "temperature", "out")}

        inputs = expand_inputs(files)
        for p in (paths["profiles"], paths["upper_profiles"], paths["pm25"], paths["temperature"]):
            if p is not None and not p.is_file():
                fail(f"{p}: does not exist" if not p.exists() else f"{p}: is not a file")
        pairs = plan_outputs(inputs, paths["out"], overwrite=cfg.overwrite)
        command = command_line()
        opt = {k: None if paths[k] is None else str(paths[k]) for k in ("upper_profiles", "pm25", "temperature")}
        jobs = [Job(str(i), str(j), str(paths["profiles"]), cfg, opt["upper_profiles"], opt["pm25"],
                    command, opt["temperature"]) for i, j in pairs]
        n = o["threads"] or 0
        n_workers = n if n > 0 else min(os.cpu_count() or 1, len(jobs))

        with progress_bar(enabled=not quiet) as progress:
            task = progress.add_task("reprocessing", total=len(jobs))

            def on_result(r: FileResult) -> None:
                progress.advance(task)
                if not r.ok:
                    console.print(f"[bold red]error:[/] {escape(r.error or '')}", highlight=False,
                                  soft_wrap=True)

            results = run_jobs(jobs, workers=n_workers, scheduler=o["scheduler"], on_result=on_result)

        failed = [r for r in results if not r.ok]
        if len(jobs) == 1 and failed:
            raise typer.Exit(2)
        if not quiet:
            console.print(_summary_table(results))
        if failed:
            console.print(f"{len(failed)} of {len(results)} files failed (reasons in the table)",
                          highlight=False)
            raise typer.Exit(2)
