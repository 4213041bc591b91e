"""``aprior generate``: DACNO2 a-priori profile fields for ``aprior reprocess --profiles``."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import typer

from aprior.cli._common import apply_threads, console, handle_errors, progress_bar, setup_logging
from aprior.errors import ConfigError


def _days(date: str | None, days: int | None, start: str | None, end: str | None) -> list[dt.date]:
    from aprior.models.dacno2.generate import day_range

    if date is not None and (start is not None or end is not None):
        raise ConfigError("give --date (with --days) or --start and --end, not both")
    if date is not None:
        return day_range(date, days=days or 1)
    if start is None or end is None:
        raise ConfigError("give --date YYYY-MM-DD, or --start and --end")
    if days is not None:
        raise ConfigError("--days goes with --date, not with --start/--end")
    return day_range(start, end)


def _pm25_inputs(eac4: list[Path] | None, data: Path | None, day: dt.date) -> tuple[list[Path], bool]:
    from aprior.errors import InputFileError
    from aprior.models.dacno2.generate import eac4_files_for
    from aprior.models.dacno2.predict import default_world

    if eac4:
        for f in eac4:
            if not Path(f).is_file():
                raise InputFileError("no such EAC4 file", f)
        return list(eac4), False
    return eac4_files_for(data if data is not None else default_world(), day)


def register(app: typer.Typer) -> None:
    @app.command("generate")
    @handle_errors
    def generate(
        out: Path = typer.Option(..., "--out", "-o", help="Output file (one day) or directory (several days: dacno2_s5p_no2_YYYYMMDD.nc each).", show_default=False),
        date: str = typer.Option(None, "--date", help="UTC day, YYYY-MM-DD.", show_default=False),
        days: int = typer.Option(None, "--days", help="Generate N days from --date (then --out is a directory).", show_default=False),
        start: str = typer.Option(None, "--start", help="First day of a range (with --end; --out is a directory).", show_default=False),
        end: str = typer.Option(None, "--end", help="Last day of a range (inclusive).", show_default=False),
        data: Path = typer.Option(None, "--data", help="Inputs: a synthetic world or a data directory with aprior-data.toml (default: the bundled SYNTHETIC demo world fixtures/world).", show_default=False),
        weights: Path = typer.Option(None, "--weights", help="DACNO2 weights file or run directory (default: the bundled demo weights, trained on a SYNTHETIC world).", show_default=False),
        pm25: bool = typer.Option(False, "--pm25", help="Also write the day's hourly 0.25 degree PM2.5 downscaled by DeepCAMS beside the NO2 field."),
        eac4: list[Path] = typer.Option(None, "--eac4", help="With --pm25: CAMS EAC4 pm2p5 file(s) (default: the synthetic world's EAC4-like files).", show_default=False),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
        threads: int = typer.Option(None, "--threads", "-j", help="CPU threads to use (default: all cores).", show_default=False),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
        verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More log output."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No summary."),
    ) -> None:
        """Generate the DACNO2-S5P 3D NO2 field of a day (11-13 UTC mean, stamped 12:00 UTC)
        on the data's 2 km grid, as the CF profile file `aprior reprocess --profiles` reads.

        Without --data and --weights it runs the bundled demo: SYNTHETIC world and weights
        trained on a SYNTHETIC world; the output says so.
        """
        from aprior._io import check_output
        from aprior.models.dacno2.catalog import open_catalog
        from aprior.models.dacno2.generate import (
            field_name,
            generate_day,
            generate_pm25,
            write_profile,
        )
        from aprior.models.dacno2.predict import default_world, load_trained

        setup_logging(verbose, quiet)
        apply_threads(threads)
        dates = _days(date, days, start, end)
        single = date is not None and days is None
        catalog = open_catalog(data if data is not None else default_world())
        catalog.check_dates(dates)
        trained = load_trained(weights, device)
        if single:
            targets = [check_output(out, overwrite=overwrite)]
        else:
            if out.exists() and not out.is_dir():
                raise ConfigError("with several days --out must be a directory", out)
            out.mkdir(parents=True, exist_ok=True)
            targets = [check_output(out / field_name(d, trained.spec.variant), overwrite=overwrite)
                       for d in dates]
        pm25_out = [(t.with_name(t.stem + "_pm25.nc") if single
                     else out / f"deepcams_pm25_{d.strftime('%Y%m%d')}.nc")
                    for t, d in zip(targets, dates, strict=True)] if pm25 else []
        pm25_in = [_pm25_inputs(eac4, data, d) for d in dates] if pm25 else []
        for p in pm25_out:
            check_output(p, overwrite=overwrite)
        t0 = time.perf_counter()
        with progress_bar(not quiet and (len(dates) > 1 or pm25)) as bar:
            task = bar.add_task("generating", total=len(dates))
            for k, (day, target) in enumerate(zip(dates, targets, strict=True)):
                field = generate_day(day, data=catalog, weights=trained)
                write_profile(target, field)
                if not quiet and single:
                    _say(target, field, time.perf_counter() - t0)
                if pm25:
                    files, synthetic = pm25_in[k]
                    pm_tasks: dict[str, int] = {}

                    def pm_progress(ev: dict, day=day, pm_tasks=pm_tasks) -> None:
                        if ev["step"] not in pm_tasks:
                            pm_tasks[ev["step"]] = bar.add_task(f"PM2.5 {day} {ev['step']}", total=ev["total"])
                        bar.update(pm_tasks[ev["step"]], completed=ev["done"], total=ev["total"])

                    generate_pm25(day, files, pm25_out[k], synthetic_input=synthetic,
                                  device=device, progress=pm_progress)
                bar.update(task, completed=k + 1, description=f"generated {day}")
        if not quiet and not single:
            console.print(f"{len(dates)} days written to {out} ({time.perf_counter() - t0:.1f} s)",
                          highlight=False)
        if not quiet and pm25_out:
            console.print(f"PM2.5 (DeepCAMS): {', '.join(str(p) for p in pm25_out)}", highlight=False)


def _say(target: Path, field, seconds: float) -> None:
    a = field.attrs
    t = str(field.times[0])[:16].replace("T", " ")
    console.print(f"{target}: {a['model']} for {t} UTC ({a['time_window']}), {field.nz} levels x "
                  f"{field.grid.ny} x {field.grid.nx} cells of 2 km, surface mean "
                  f"{float(field.no2[0, 0].mean()):.2f} ug m-3, {seconds:.1f} s", highlight=False)
    if a.get("synthetic") == "true":
        console.print(f"[bold]{a['comment']}[/]", highlight=False)
