"""``aprior demo``: generate, reprocess and compare on the bundled synthetic world."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import typer

from aprior.cli._common import (
    QUIET_HELP,
    THREADS_HELP,
    VERBOSE_HELP,
    apply_threads,
    command_line,
    console,
    handle_errors,
    progress_bar,
    setup_logging,
)
from aprior.errors import ConfigError


def register(app: typer.Typer) -> None:
    @app.command("demo")
    @handle_errors
    def demo(
        out: Path = typer.Option(Path("aprior-demo"), "--out", "-o", help="Output directory (default: aprior-demo).", show_default=False),
        date: list[str] = typer.Option(None, "--date", help="A demo day, YYYY-MM-DD; repeat for several (default: every orbit day of the world).", show_default=False),
        data: Path = typer.Option(None, "--data", help="A synthetic world directory (default: the bundled fixtures/world).", show_default=False),
        weights: Path = typer.Option(None, "--weights", help="DACNO2 weights (default: the bundled demo weights).", show_default=False),
        device: str = typer.Option("auto", "--device", help="torch device: auto, cpu or cuda (default: auto)."),
        threads: int = typer.Option(0, "--threads", "-j", help=THREADS_HELP),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out."),
        verbose: int = typer.Option(0, "--verbose", "-v", count=True, help=VERBOSE_HELP),
        quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
    ) -> None:
        """Run the main job end to end on the bundled SYNTHETIC world: generate the DACNO2-S5P
        field for every orbit day of the world, reprocess the orbits with it and with the
        CAMS-like field, compare the columns (against TM5 and against the known truth: the
        closed loop, on days the weights never trained on) and write an HTML report.
        """
        from aprior.demo import STEPS, DemoConfig, run_demo

        setup_logging(verbose, quiet)
        apply_threads(threads)
        days = []
        for d in date or []:
            try:
                days.append(dt.date.fromisoformat(d))
            except ValueError:
                raise ConfigError(f"--date must be YYYY-MM-DD, got {d!r}") from None
        cfg = DemoConfig(out=out, dates=tuple(days), world=data, weights=weights, device=device,
                         overwrite=overwrite, command=command_line())
        t0 = time.perf_counter()
        with progress_bar(not quiet) as bar:
            task = bar.add_task("demo", total=STEPS)

            def progress(i: int, n: int, what: str) -> None:
                bar.update(task, completed=i - 1, description=what)

            result = run_demo(cfg, progress)
        console.print(f"[bold]aprior demo[/] on the SYNTHETIC world ({time.perf_counter() - t0:.0f} s): "
                      f"report at {result.report}", highlight=False)
        for line in result.summary:
            typer.echo(line)
