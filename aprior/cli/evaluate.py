"""``aprior evaluate``: DACNO2's Table 2 (or the DeepCAMS evaluation tables)."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from aprior._io import probe_writable
from aprior.cli._common import apply_threads, console, handle_errors, progress_bar, setup_logging
from aprior.cli.train import MODELS
from aprior.errors import ConfigError

PHASE_DIRS = ("phase1", "phase2", "phase3")


def _dacno2_weights(runs: Path | None, phase1: Path | None, phase2: Path | None,
                    phase3: Path | None) -> dict[str, Path]:
    given = {k: v for k, v in zip(PHASE_DIRS, (phase1, phase2, phase3), strict=True) if v is not None}
    if runs is not None:
        if not runs.is_dir():
            raise ConfigError("--runs must be a directory holding phase1/, phase2/, phase3/", runs)
        for name in PHASE_DIRS:
            if name not in given and (runs / name).is_dir():
                given[name] = runs / name
    if not given:
        raise ConfigError("give the weights to evaluate: --phase1/--phase2/--phase3 (run "
                          "directories or weights files) or --runs DIR with phase1/ phase2/ phase3/")
    return given


def register(app: typer.Typer) -> None:
    @app.command("evaluate")
    @handle_errors
    def evaluate(
        data: Path = typer.Option(..., "--data", help="The synthetic world or data directory the models were trained on.", show_default=False),
        out: Path = typer.Option(..., "--out", "-o", help="Directory for the tables (table2.csv/.json/.txt, on a synthetic world table2_shape.csv; DeepCAMS: deepcams_eval.csv/.json/.txt).", show_default=False),
        model: str = typer.Option("dacno2", "--model", help="dacno2 or deepcams."),
        runs: Path = typer.Option(None, "--runs", help="DACNO2: a directory holding the run directories phase1/, phase2/, phase3/.", show_default=False),
        phase1: Path = typer.Option(None, "--phase1", help="DACNO2 phase-1 run directory or weights file.", show_default=False),
        phase2: Path = typer.Option(None, "--phase2", help="DACNO2 phase-2 run directory or weights file.", show_default=False),
        phase3: Path = typer.Option(None, "--phase3", help="DACNO2 phase-3 run directory or weights file.", show_default=False),
        temporal_weights: Path = typer.Option(None, "--temporal-weights", help="DeepCAMS temporal weights (default: bundled demo).", show_default=False),
        spatial_weights: Path = typer.Option(None, "--spatial-weights", help="DeepCAMS spatial weights (default: bundled demo).", show_default=False),
        dates: list[str] = typer.Option(None, "--date", help="Evaluate these days (repeat; default: the test year's days).", show_default=False),
        every: int = typer.Option(1, "--every", help="DACNO2: evaluate every N-th of the days only (quicker)."),
        bias_by_year: bool = typer.Option(True, "--bias-by-year/--no-bias-by-year", help="DACNO2: also the mean bias per year (predicts the training years' validation days too)."),
        max_hours: int = typer.Option(None, "--max-hours", help="DeepCAMS: only the first N hours of the days.", show_default=False),
        cache_dir: Path = typer.Option(None, "--cache-dir", help="DACNO2 prepared-data cache (as in training).", show_default=False),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
        threads: int = typer.Option(None, "--threads", "-j", help="CPU threads to use (default: all cores).", show_default=False),
        closed_loop: bool = typer.Option(False, "--closed-loop", help="DACNO2: reprocess the world's held-out S5P orbits with TM5, CAMS-like, each phase and the block-averaged truth, and score the columns against the true ones, with each one's MARE minus CAMS-like's and its 95 % interval over days (closed_loop.csv/_differences.csv/_days.csv/_shape.csv/.json/.txt/.png)."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing tables."),
        verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More log output."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="Do not print the table."),
    ) -> None:
        """Evaluate DACNO2 phases 1-3 on the test year (the paper's Table 2: held-out EEA
        stations with CAMS-2km as baseline, CAMS per layer; on a synthetic world also the
        truth, fine-scale structure and the bias per year), or DeepCAMS (--model deepcams).
        """
        setup_logging(verbose, quiet)
        apply_threads(threads)
        if model not in MODELS:
            raise ConfigError(f"--model must be dacno2 or deepcams, got {model!r}")
        stem = "table2" if model == "dacno2" else "deepcams_eval"
        if closed_loop:
            if model != "dacno2":
                raise ConfigError("--closed-loop is for DACNO2")
            stem = "closed_loop"
        targets = [out / f"{stem}.{s}" for s in ("csv", "json", "txt")]
        existing = [p for p in targets if p.exists()]
        if existing and not overwrite:
            raise ConfigError("the tables exist; pass --overwrite to replace them", existing[0])
        probe_writable(out if out.is_dir() else out.parent)  # before minutes of work
        t0 = time.perf_counter()
        if closed_loop:
            text = _closed_loop(data, out, runs, phase1, phase2, phase3, dates, device, quiet)
        elif model == "dacno2":
            text = _dacno2(data, out, runs, phase1, phase2, phase3, dates, every, bias_by_year,
                           cache_dir, device, quiet)
        else:
            if any(v is not None for v in (runs, phase1, phase2, phase3)):
                raise ConfigError("--runs/--phase1/2/3 are for DACNO2; DeepCAMS takes "
                                  "--temporal-weights and --spatial-weights")
            text = _deepcams(data, out, temporal_weights, spatial_weights, dates, max_hours, device,
                             quiet)
        if not quiet:
            typer.echo(text)
            console.print(f"tables written to {out} ({time.perf_counter() - t0:.1f} s)",
                          highlight=False)


def _dacno2(data, out, runs, phase1, phase2, phase3, dates, every, bias_by_year, cache_dir,
            device, quiet) -> str:
    from aprior.models.dacno2.evaluate import evaluate_dacno2
    from aprior.models.dacno2.table import render_table2, write_table2

    weights = _dacno2_weights(runs, phase1, phase2, phase3)
    with progress_bar(not quiet) as bar:
        task = bar.add_task("evaluating", total=None)

        def progress(what: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=f"evaluating: day {done}/{total}")

        result = evaluate_dacno2(data, weights, cache_dir=cache_dir, device=device,
                                 dates=dates or None, every=every, bias_by_year=bias_by_year,
                                 progress=progress)
    write_table2(result, out)
    return render_table2(result)


def _closed_loop(data, out, runs, phase1, phase2, phase3, dates, device, quiet) -> str:
    from aprior.models.dacno2.closed_loop import closed_loop
    from aprior.models.dacno2.predict import bundled_weights
    from aprior.models.dacno2.table import render_closed_loop, write_closed_loop

    given = (runs, phase1, phase2, phase3)
    weights = (_dacno2_weights(*given) if any(v is not None for v in given)
               else {"phase3": bundled_weights()})
    with progress_bar(not quiet) as bar:
        task = bar.add_task("closed loop", total=None)

        def progress(what: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=f"closed loop: day {done}/{total}")

        result = closed_loop(data, weights, device=device, dates=dates or None, progress=progress)
    write_closed_loop(result, out)
    return render_closed_loop(result)


def _deepcams(data, out, temporal_weights, spatial_weights, dates, max_hours, device,
              quiet: bool = False) -> str:
    from aprior.models.deepcams.evaluate import evaluate_deepcams
    from aprior.models.deepcams.report import render_evaluation, write_evaluation

    with progress_bar(not quiet) as bar:
        tasks: dict[str, int] = {}

        def progress(ev: dict) -> None:
            if ev["table"] not in tasks:
                tasks[ev["table"]] = bar.add_task(f"DeepCAMS {ev['table']}", total=ev["total"])
            bar.update(tasks[ev["table"]], completed=ev["done"], total=ev["total"])

        result = evaluate_deepcams(data, temporal_weights, spatial_weights, dates=dates or None,
                                   device=device, max_hours=max_hours, progress=progress)
    out.mkdir(parents=True, exist_ok=True)
    text = render_evaluation(result)
    for suffix in ("json", "csv"):
        write_evaluation(result, out / f"deepcams_eval.{suffix}")
    from aprior._io import atomic_path

    with atomic_path(out / "deepcams_eval.txt") as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
    return text
