"""``aprior downscale``: CAMS EAC4 PM2.5 (3-hourly, 0.75 degree) -> hourly 0.25 degree (DeepCAMS)."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import typer

from aprior.cli._common import (
    THREADS_HELP,
    apply_threads,
    console,
    handle_errors,
    progress_bar,
    setup_logging,
)
from aprior.errors import ConfigError, InputFileError


def _inputs(cams: list[Path] | None) -> tuple[list[Path], bool]:
    """The EAC4 files to read and whether they are synthetic (the bundled demo world)."""
    if cams:
        return list(cams), False
    from aprior.models.deepcams.archive import open_pm25_data
    from aprior.models.deepcams.downscale import default_world

    world = default_world()
    if world is None:
        raise InputFileError("no --eac4 files given and no bundled demo world (fixtures/world) found; "
                             "pass the EAC4 files with --eac4")
    data = open_pm25_data(world)
    if not data.eac4_files:
        raise InputFileError("the demo world has no EAC4-like PM2.5 file", world)
    return list(data.eac4_files), data.synthetic


def register(app: typer.Typer) -> None:
    @app.command("downscale")
    @handle_errors
    def downscale(
        date: str = typer.Option(..., "--date", help="UTC day to downscale, YYYY-MM-DD.", show_default=False),
        out: Path = typer.Option(..., "--out", "-o", help="Output netCDF file (pm25, ug m-3, hourly 0.25 degree).", show_default=False),
        cams: list[Path] = typer.Option(None, "--eac4", help="CAMS EAC4 pm2p5 netCDF file (global or a regional area, float or int16-packed); repeat for several (add the next day's file to fill 21-23 UTC). Default: the bundled SYNTHETIC demo world.", show_default=False),
        temporal: str = typer.Option("network", "--temporal", help="Temporal step: network (the XVFI-like stage with local solar time, the default: network + area is the fastest chain that beats linear + area on every held-out SYNTHETIC case, docs/deepcams.md) or linear."),
        spatial: str = typer.Option("area", "--spatial", help="Spatial step: network (the ABPN-like stage), bicubic or area (area-conserving, the default)."),
        temporal_weights: Path = typer.Option(None, "--temporal-weights", help="Temporal-stage weights for --temporal network (default: the bundled demo weights, trained on a SYNTHETIC world).", show_default=False),
        spatial_weights: Path = typer.Option(None, "--spatial-weights", help="Spatial-stage weights for --spatial network (default: the bundled demo weights, trained on a SYNTHETIC world).", show_default=False),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
        threads: int = typer.Option(0, "--threads", "-j", help=THREADS_HELP),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
        verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More log output."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar, no summary."),
    ) -> None:
        """Downscale one day of CAMS EAC4 PM2.5 (3-hourly, 0.75 degree) to hourly 0.25
        degree: a temporal step fills the hours between the 3-hourly frames, a spatial step
        refines every hour from 0.75 to 0.25 degree. Regional EAC4 subsets give the same
        box at 0.25 degree.
        """
        from aprior._io import check_output
        from aprior.models.deepcams.downscale import check_methods, downscale_files, load_pipeline

        setup_logging(verbose, quiet)
        apply_threads(threads)
        try:
            day = dt.date.fromisoformat(date)
        except ValueError:
            raise ConfigError(f"--date must be YYYY-MM-DD, got {date!r}") from None
        check_methods(temporal, spatial)
        files, synthetic = _inputs(cams)
        for f in files:
            if not Path(f).is_file():
                raise InputFileError("no such file", f)
        check_output(out, overwrite=overwrite, inputs=tuple(files))
        t0 = time.perf_counter()
        pipeline = load_pipeline(temporal, spatial, temporal_weights, spatial_weights, device)
        with progress_bar(not quiet) as bar:
            tasks: dict[str, int] = {}

            def progress(ev: dict) -> None:
                step = ev["step"]
                if step not in tasks:
                    tasks[step] = bar.add_task(f"{step} ({getattr(pipeline, step)})", total=ev["total"])
                bar.update(tasks[step], completed=ev["done"], total=ev["total"])

            field = downscale_files(day, files, out, pipeline, synthetic_input=synthetic,
                                    progress=progress)
        if not quiet:
            hours = f"{str(field.times[0])[11:16]}-{str(field.times[-1])[11:16]} UTC"
            console.print(f"{out}: {field.values.shape[0]} hourly frames ({hours}) of {day} on "
                          f"{field.values.shape[1]} x {field.values.shape[2]} nodes "
                          f"({pipeline.label}), {time.perf_counter() - t0:.1f} s", highlight=False)
            what = [w for w, flag in (("weights trained on a synthetic world", pipeline.synthetic),
                                      ("synthetic input (the bundled demo world)", synthetic)) if flag]
            if what:
                console.print(f"[bold]SYNTHETIC: made from {' and '.join(what)}; not a product of "
                              "real data.[/]", highlight=False)
