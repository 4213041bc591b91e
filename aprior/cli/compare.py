"""``aprior compare``: statistics, maps and a report of reprocessed columns."""

from __future__ import annotations

import shlex
import sys
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
from aprior.compare import DEFAULT_REGIONS, CompareConfig, compare
from aprior.errors import ConfigError

_REGION_HELP = ("Another region: a name (see docs/compare.md), a 'w,s,e,n' box or a GeoJSON "
                f"file; repeatable. Always compared: {', '.join(DEFAULT_REGIONS)}.")


def _extent(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4:
        raise ConfigError(f"--extent must be 'west,south,east,north' in degrees, got {text!r}")
    return values  # type: ignore[return-value]


def _command(options: list[tuple[str, object]], files: list[str]) -> str:
    """The command line: sys.argv when run as ``aprior compare``, else rebuilt from options."""
    if len(sys.argv) > 1 and sys.argv[1] == "compare":
        return "aprior compare " + shlex.join(sys.argv[2:])
    parts = ["aprior", "compare", *files]
    for flag, value in options:
        if value is None or value is False or value == []:
            continue
        if value is True:
            parts.append(flag)
        elif isinstance(value, list):
            for v in value:
                parts += [flag, str(v)]
        else:
            parts += [flag, str(value)]
    return shlex.join(parts)


def register(app: typer.Typer) -> None:
    @app.command("compare")
    @handle_errors
    def compare_cmd(
        files: list[str] = typer.Argument(..., help="Reprocessed L2 files, globs or directories.", show_default=False),
        out: Path = typer.Option(..., "--out", "-o", help="Output directory: report.html, stats.json, stats.csv, maps.nc, img/.", show_default=False),
        against: list[str] = typer.Option(None, "--against", help="A second reprocessed set of the same orbits (files, globs or a directory; repeat the option for more). Compared as FILES - AGAINST.", show_default=False),
        qa: float = typer.Option(0.75, "--qa", help="Compare pixels with qa_value >= this."),
        region: list[str] = typer.Option(None, "--region", help=_REGION_HELP, show_default=False),
        resolution: float = typer.Option(0.05, "--resolution", help="Map cell size, degrees."),
        extent: str = typer.Option(None, "--extent", help="Map box 'west,south,east,north' (default: the DACNO2 domain -5,42,9,54).", show_default=False),
        truth: list[str] = typer.Option(None, "--truth", help="Per-orbit truth files or their directory (truth/s5p of a synthetic world): each set is also compared with the true column.", show_default=False),
        label: str = typer.Option(None, "--label", help="Name of the reprocessed set of FILES (default: from its apriori_source).", show_default=False),
        mode: str = typer.Option("apriori", "--mode", help="apriori: reprocessed columns against the original (TM5) ones; model: the model's column seen through the original kernel (APRIORI_REPLACEMENT/apriori_tropospheric_column_smoothed) against the satellite's column, with the same statistics, regions and maps."),
        against_label: str = typer.Option(None, "--against-label", help="Name of the --against set (default: from its apriori_source).", show_default=False),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output directory."),
        threads: int = typer.Option(0, "--threads", "-j", help=THREADS_HELP),
        verbose: int = typer.Option(0, "--verbose", "-v", count=True, help=VERBOSE_HELP),
        quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
    ) -> None:
        """Compare reprocessed NO2 columns with the original (TM5) ones or with another set.

        Per-pixel statistics (mean, median, 5th and 95th percentiles of the absolute and
        relative differences) for the DACNO2 domain, the northern region, Paris, the Alps and
        any --region; area-weighted mean maps; a self-contained HTML report.
        """
        setup_logging(verbose, quiet)
        apply_threads(threads)
        command = _command([("--out", str(out)), ("--against", against or []), ("--qa", qa),
                            ("--region", region or []), ("--resolution", resolution),
                            ("--extent", extent), ("--truth", truth or []), ("--label", label),
                            ("--against-label", against_label), ("--mode", None if mode == "apriori" else mode),
                            ("--overwrite", overwrite)],
                           files)
        regions = tuple(DEFAULT_REGIONS) + tuple(r for r in (region or [])
                                                 if r not in DEFAULT_REGIONS)
        try:
            cfg = CompareConfig(qa_min=qa, regions=regions, resolution=resolution,
                                extent=_extent(extent), label=label, against_label=against_label,
                                overwrite=overwrite, command=command, mode=mode)
        except ValueError as exc:
            raise ConfigError(f"invalid option: {exc}") from None

        with progress_bar(enabled=not quiet) as progress:
            task = progress.add_task("comparing", total=None)

            def on_file(done: int, total: int, path: Path) -> None:
                progress.update(task, completed=done, total=total)

            result = compare(files, out, cfg, on_file, against=against or None,
                             truth=truth or None)
        if not quiet:
            for line in result.summary_lines():
                typer.echo(line)
            console.print(f"report: {result.report}", highlight=False, soft_wrap=True)
