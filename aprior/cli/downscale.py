"""``aprior downscale``: CAMS EAC4 PM2.5 (3-hourly, 0.75 degree) -> hourly 0.25 degree (DeepCAMS)."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import typer

from aprior.cli._common import console, handle_errors, setup_logging
from aprior.errors import ConfigError, InputFileError


def _inputs(cams: list[Path] | None) -> tuple[list[Path], bool]:
    """The EAC4 files to read and whether they are synthetic (the bundled demo world)."""
    if cams:
        return list(cams), False
    from aprior.models.deepcams.archive import open_pm25_data
    from aprior.models.deepcams.downscale import default_world

    world = default_world()
    if world is None:
        raise InputFileError("no --cams files given and no bundled demo world (fixtures/world) found; "
                             "pass the EAC4 files with --cams")
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
        cams: list[Path] = typer.Option(None, "--cams", help="CAMS EAC4 pm2p5 netCDF file; repeat for several (add the next day's file to fill 21-23 UTC). Default: the bundled SYNTHETIC demo world.", show_default=False),
        temporal_weights: Path = typer.Option(None, "--temporal-weights", help="Temporal-stage weights (default: the bundled demo weights, trained on a SYNTHETIC world).", show_default=False),
        spatial_weights: Path = typer.Option(None, "--spatial-weights", help="Spatial-stage weights (default: the bundled demo weights, trained on a SYNTHETIC world).", show_default=False),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
        verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More log output."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No summary."),
    ) -> None:
        """Downscale one day of CAMS EAC4 PM2.5 to hourly 0.25 degree with DeepCAMS: the
        temporal model fills the hours between the 3-hourly frames, the spatial model
        refines every hour from 0.75 to 0.25 degree.
        """
        from aprior._io import check_output
        from aprior.models.deepcams.archive import read_eac4_files
        from aprior.models.deepcams.downscale import (
            downscale_day,
            load_stage,
            provenance,
            write_downscaled,
        )

        setup_logging(verbose, quiet)
        try:
            day = dt.date.fromisoformat(date)
        except ValueError:
            raise ConfigError(f"--date must be YYYY-MM-DD, got {date!r}") from None
        files, synthetic = _inputs(cams)
        for f in files:
            if not Path(f).is_file():
                raise InputFileError("no such file", f)
        check_output(out, overwrite=overwrite, inputs=tuple(files))
        t0 = time.perf_counter()
        temporal = load_stage("temporal", temporal_weights, device)
        spatial = load_stage("spatial", spatial_weights, device)
        eac4 = read_eac4_files(files)
        field = downscale_day(day, eac4, device=device, stages=(temporal, spatial))
        prov = provenance(temporal, spatial, day, [Path(f).name for f in files], synthetic)
        write_downscaled(out, field, prov)
        if not quiet:
            hours = f"{str(field.times[0])[11:16]}-{str(field.times[-1])[11:16]} UTC"
            console.print(f"{out}: {field.values.shape[0]} hourly frames ({hours}) of {day} on "
                          f"{field.values.shape[1]} x {field.values.shape[2]} nodes, "
                          f"{time.perf_counter() - t0:.1f} s", highlight=False)
            if "synthetic_note" in prov:
                console.print(f"[bold]{prov['synthetic_note']}[/]", highlight=False)
