"""``aprior reprocess``: recompute TROPOMI NO2 columns with a new a-priori."""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import replace
from pathlib import Path

import typer
from rich.table import Table

from aprior.cli._common import console, fail, handle_errors, progress_bar, setup_logging
from aprior.config import from_dict, load_toml
from aprior.retrieval.batch import FileResult, Job, expand_inputs, plan_outputs, run_jobs
from aprior.retrieval.reprocess import ReprocessConfig


def _summary_table(results: list[FileResult]) -> Table:
    table = Table(title="aprior reprocess", show_lines=False)
    table.add_column("file", overflow="fold")
    table.add_column("status")
    table.add_column("pixels reprocessed", justify="right")
    table.add_column("median new/old", justify="right")
    table.add_column("s", justify="right")
    for r in results:
        if r.ok and r.summary is not None:
            s = r.summary
            table.add_row(Path(r.input).name, "[green]ok[/]", f"{s.n_reprocessed:,} / {s.n_in_field:,}",
                          f"{s.median_column_ratio:.3f}", f"{s.seconds:.1f}")
        else:
            table.add_row(Path(r.input).name, "[red]failed[/]", "", "", "")
    return table


def register(app: typer.Typer) -> None:
    @app.command("reprocess")
    @handle_errors
    def reprocess(
        files: list[str] = typer.Argument(..., help="S5P L2 NO2 files or globs.", show_default=False),
        profiles: Path = typer.Option(..., "--profiles", "-p", help="3D NO2 field: our CF netCDF (no2, height, x, y) or a CAMS European air-quality file.", show_default=False),
        out: Path = typer.Option(..., "--out", "-o", help="Output file (one input) or directory (several inputs; files keep their names).", show_default=False),
        min_coverage: float = typer.Option(None, "--min-coverage", help="Pixels covered less than this fraction by the field get fill values. (default: 0.95)", show_default=False),
        crop: bool = typer.Option(None, "--crop/--no-crop", help="Write only the scanlines that touch the field. (default: no-crop)", show_default=False),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
        extension: str = typer.Option(None, "--extension", help="Profile above the field's top level: constant_vmr, upper_field or zero. (default: constant_vmr)", show_default=False),
        upper_profiles: Path = typer.Option(None, "--upper-profiles", help="Field used above the top level (with --extension upper_field).", show_default=False),
        pm25: Path = typer.Option(None, "--pm25", help="PM2.5 field sampled at pixel centres into APRIORI_REPLACEMENT/pm25_context.", show_default=False),
        temperature: Path = typer.Option(None, "--temperature", help="ERA5 pressure-level file whose temperature 't' replaces the standard atmosphere in the layer heights.", show_default=False),
        workers: int = typer.Option(0, "--workers", "-j", help="Worker processes for many files (0: one per core, at most one per file)."),
        scheduler: str = typer.Option(None, "--scheduler", help="Address of an existing dask scheduler instead of a local cluster.", show_default=False),
        block_scanlines: int = typer.Option(None, "--block-scanlines", help="Scanlines processed at once. (default: 256)", show_default=False),
        sensor: str = typer.Option(None, "--sensor", help="Sensor plugin (see 'aprior plugins'); detected by default.", show_default=False),
        profile_source: str = typer.Option(None, "--profile-source", help="Profile-source plugin; detected by default.", show_default=False),
        config: Path = typer.Option(None, "--config", help="TOML file with a [reprocess] table of these options.", show_default=False),
        verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More log output."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary table."),
    ) -> None:
        """Recompute tropospheric NO2 columns, AMFs and kernels with a new a-priori field.

        The output keeps everything of the input and adds the *_reprocessed variables and the
        PRODUCT/SUPPORT_DATA/APRIORI_REPLACEMENT group. Inputs are never modified.
        """
        setup_logging(verbose, quiet)
        base = load_toml(config, "reprocess") if config else {}
        cfg = from_dict(ReprocessConfig, base, source=str(config) if config else None)
        vert = cfg.vertical
        if extension is not None:
            if extension not in ("constant_vmr", "upper_field", "zero"):
                fail(f"--extension must be constant_vmr, upper_field or zero, not {extension!r}")
            vert = replace(vert, extension=extension)
        elif upper_profiles is not None:
            vert = replace(vert, extension="upper_field")
        cli = {k: v for k, v in dict(min_coverage=min_coverage, crop=crop, block_scanlines=block_scanlines,
                                       sensor=sensor, profile_source=profile_source).items() if v is not None}
        cfg = replace(cfg, **cli, vertical=vert, overwrite=overwrite or cfg.overwrite)

        inputs = expand_inputs(files)
        for p in (profiles, upper_profiles, pm25, temperature):
            if p is not None and not p.is_file():
                fail(f"{p}: no such file")
        pairs = plan_outputs(inputs, out)
        command = "aprior reprocess " + " ".join(shlex.quote(a) for a in sys.argv[2:])
        jobs = [Job(str(i), str(o), str(profiles), cfg,
                    str(upper_profiles) if upper_profiles else None, str(pm25) if pm25 else None, command,
                    str(temperature) if temperature else None)
                for i, o in pairs]
        n_workers = workers if workers > 0 else min(os.cpu_count() or 1, len(jobs))

        with progress_bar(enabled=not quiet) as progress:
            task = progress.add_task("reprocessing", total=len(jobs))

            def on_result(r: FileResult) -> None:
                progress.advance(task)
                if not r.ok:
                    console.print(f"[red]failed:[/] {r.error}", highlight=False, soft_wrap=True)

            results = run_jobs(jobs, workers=n_workers, scheduler=scheduler, on_result=on_result)

        failed = [r for r in results if not r.ok]
        if len(jobs) == 1 and failed:
            raise typer.Exit(2)
        if not quiet:
            console.print(_summary_table(results))
        if failed:
            console.print(f"[red]{len(failed)} of {len(results)} files failed[/]", highlight=False)
            raise typer.Exit(2)
