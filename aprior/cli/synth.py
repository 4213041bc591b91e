"""``aprior synth``: write a synthetic world (every input in its real format, plus the truth)."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from aprior.cli._common import (
    QUIET_HELP,
    THREADS_HELP,
    VERBOSE_HELP,
    apply_threads,
    console,
    handle_errors,
    progress_bar,
    setup_logging,
)


def register(app: typer.Typer) -> None:
    @app.command("synth")
    @handle_errors
    def synth(
        out: Path = typer.Option(..., "--out", "-o", help="Directory to write the world into (new or empty).", show_default=False),
        seed: int = typer.Option(0, "--seed", help="World seed: the same seed gives the same world."),
        start: str = typer.Option(None, "--start", help="First day, YYYY-MM-DD (default 2023-01-13).", show_default=False),
        end: str = typer.Option(None, "--end", help="Last day (inclusive), YYYY-MM-DD (default 2023-01-14, or --start when given).", show_default=False),
        region: str = typer.Option("demo", "--region", help="Region name (demo, domain, northern, paris, alps, benelux) or 'west,south,east,north' in degrees."),
        pm25_hours: int = typer.Option(None, "--pm25-hours", help="Hours of global PM2.5 fields from the start; -1 for the whole period, 0 for none (default 7).", show_default=False),
        eac4_hours: int = typer.Option(None, "--eac4-hours", help="Hours of the 3-hourly 0.75 degree (EAC4-like) PM2.5 from the start; -1 for the whole period (default: as --pm25-hours; never fewer).", show_default=False),
        day_step: int = typer.Option(1, "--day-step", help="Make every N-th day of the period only, each with its own chemistry spin-up (for long training worlds)."),
        s5p: bool = typer.Option(True, "--s5p/--no-s5p", help="Write the Sentinel-5P orbits."),
        s5p_noise: float = typer.Option(0.0, "--s5p-noise", help="Relative noise on the synthetic S5P columns."),
        threads: int = typer.Option(0, "--threads", "-j", help=THREADS_HELP),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace the synthetic world already in --out."),
        verbose: int = typer.Option(0, "--verbose", "-v", count=True, help=VERBOSE_HELP),
        quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
    ) -> None:
        """Write a SYNTHETIC world: ERA5, CAMS, EEA, static maps, PM2.5 and S5P files made
        from a known 3D NO2 truth, which is kept apart under OUT/truth/.

        Tests, benchmarks and the demo run on it. Nothing in it is real data.
        """
        from aprior.synth import SynthConfig, generate_world

        setup_logging(verbose, quiet)
        apply_threads(threads)
        kw: dict = {"seed": seed, "region": region, "s5p": s5p, "s5p_noise_rel": s5p_noise}
        if start is not None:
            kw["start"] = start
            kw["end"] = end if end is not None else start
        elif end is not None:
            kw["end"] = end
        if pm25_hours is not None:
            kw["pm25_hours"] = None if pm25_hours < 0 else pm25_hours
        if eac4_hours is not None:
            kw["eac4_hours"] = None if eac4_hours < 0 else eac4_hours
        kw["day_step"] = day_step
        cfg = SynthConfig(**kw)
        t0 = time.perf_counter()
        with progress_bar(not quiet) as bar:
            task = bar.add_task("synthetic world", total=len(cfg.days))

            def progress(what: str, i: int, n: int) -> None:
                if what == "days":
                    bar.update(task, completed=i, description=f"day {min(i + 1, n)}/{n}")

            manifest = generate_world(out, cfg, overwrite=overwrite, progress=progress)
        if not quiet:
            from aprior.inputs.world import open_world

            world = open_world(out)
            size = world.manifest["total_bytes"] / 1e6
            console.print(f"[bold]SYNTHETIC[/] world written to {out}: {world.manifest['n_files']} files, "
                          f"{size:.1f} MB, {time.perf_counter() - t0:.1f} s (manifest: {manifest.name}; "
                          "the truth is under truth/)", highlight=False)

    @app.command("synth-pm25")
    @handle_errors
    def synth_pm25(
        out: Path = typer.Option(..., "--out", "-o", help="Directory for the PM2.5 world (new or empty).", show_default=False),
        seed: int = typer.Option(0, "--seed", help="World seed: the same seed gives the same world."),
        start: str = typer.Option("2023-03-01", "--start", help="First day, YYYY-MM-DD."),
        days: int = typer.Option(8, "--days", help="Number of days."),
        spinup: int = typer.Option(72, "--spinup-hours", help="Hours run before the first day."),
        threads: int = typer.Option(0, "--threads", "-j", help=THREADS_HELP),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace the PM2.5 world in --out."),
        verbose: int = typer.Option(0, "--verbose", "-v", count=True, help=VERBOSE_HELP),
        quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
    ) -> None:
        """Write a SYNTHETIC global PM2.5 world for DeepCAMS: an hourly 0.25 degree truth
        with winds, a boundary-layer cycle, plumes, fires, dust and rain (GEOS-CF layout),
        and a 0.75 degree model of it with its own errors (EAC4 layout, int16-packed;
        hourly copies for training). Separate from `aprior synth`, whose worlds it leaves
        unchanged.
        """
        from aprior.synth.pm25_files import write_pm25_world

        setup_logging(verbose, quiet)
        apply_threads(threads)
        t0 = time.perf_counter()
        with progress_bar(not quiet) as bar:
            task = bar.add_task("PM2.5 world (hours)", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            manifest = write_pm25_world(out, seed=seed, start=start, days=days,
                                        spinup_hours=spinup, overwrite=overwrite, progress=progress)
        if not quiet:
            console.print(f"{manifest.parent}: SYNTHETIC PM2.5 world, seed {seed}, {days} day(s) "
                          f"from {start}, {time.perf_counter() - t0:.1f} s", highlight=False)
