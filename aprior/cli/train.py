"""``aprior train``: train a DACNO2 phase (or a DeepCAMS stage) with the shared engine."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from aprior._io import probe_writable
from aprior.cli._common import (
    apply_threads,
    command_line,
    console,
    handle_errors,
    progress_bar,
    setup_logging,
)
from aprior.errors import ConfigError

MODELS = ("dacno2", "deepcams")




class _Progress:
    """Renders engine progress: a bar per epoch with the running loss, a line per epoch."""

    def __init__(self, bar, quiet: bool) -> None:
        self.bar, self.quiet, self.task = bar, quiet, None
        self.prep = None

    def prepare(self, what: str, done: int, total: int) -> None:
        if self.prep is None:
            self.prep = self.bar.add_task("preparing data", total=total)
        self.bar.update(self.prep, completed=done, description=f"preparing data: day {done}/{total}")

    def __call__(self, ev: dict) -> None:
        if ev.get("event", "step") == "step":
            desc = f"epoch {ev['epoch']}/{ev['epochs']} loss {ev['loss']:.4g}"
            if self.task is None:
                self.task = self.bar.add_task(desc, total=ev["steps"])
            self.bar.update(self.task, completed=ev["step"], total=ev["steps"], description=desc)
            return
        if self.task is not None:
            self.bar.remove_task(self.task)
            self.task = None
        if not self.quiet:
            best = " [bold green](best)[/]" if ev.get("best") else ""
            console.print(f"epoch {ev['epoch']}/{ev['epochs']}: train {ev['train_loss']:.5g}, "
                          f"val {ev['val_loss']:.5g}{best}, {ev.get('seconds', 0):.1f} s, "
                          f"{ev.get('samples_per_second', 0):.3g} samples/s", highlight=False)


def _settings_overrides(**values) -> dict:
    return {k: v for k, v in values.items() if v is not None}


def register(app: typer.Typer) -> None:
    @app.command("train")
    @handle_errors
    def train_cmd(
        data: Path = typer.Option(..., "--data", help="Training data: a synthetic world (aprior synth) or a data directory with aprior-data.toml.", show_default=False),
        out: Path = typer.Option(..., "--out", "-o", help="Run directory (new or empty; with --resume the run to continue).", show_default=False),
        phase: int = typer.Option(None, "--phase", help="DACNO2 phase: 1 (CAMS), 2 (CAMS + stations), 3 (test-year stations + SSIM to phase 2).", show_default=False),
        from_: Path = typer.Option(None, "--from", help="Phases 2 and 3: the previous phase's run directory (or weights file); phase 1: optionally another phase-1 run to start from (a warm start).", show_default=False),
        model: str = typer.Option("dacno2", "--model", help="dacno2 or deepcams."),
        stage: str = typer.Option(None, "--stage", help="DeepCAMS stage: temporal or spatial.", show_default=False),
        config: Path = typer.Option(None, "--config", help="TOML with [train], [model], [data] (and for DACNO2 [phase]) tables.", show_default=False),
        preset: str = typer.Option(None, "--preset", help="Network size: paper, small or tiny, and for DACNO2 medium (default: DACNO2 paper / the previous phase's; DeepCAMS small).", show_default=False),
        epochs: int = typer.Option(None, "--epochs", help="Epochs (default 200; DACNO2 phase 3: 100).", show_default=False),
        lr: float = typer.Option(None, "--lr", help="Learning rate (default 1e-3; DACNO2 phases 2, 3: phase 1's x 0.1).", show_default=False),
        batch_size: int = typer.Option(None, "--batch-size", help="Effective batch, reached by gradient accumulation (default 56, the paper's).", show_default=False),
        micro_batch: int = typer.Option(None, "--micro-batch", help="Samples per forward pass (default 2).", show_default=False),
        max_batches: int = typer.Option(None, "--max-batches", help="Cap on micro-batches per epoch (training and validation).", show_default=False),
        patience: int = typer.Option(None, "--patience", help="Stop after this many epochs without a better validation loss.", show_default=False),
        seed: int = typer.Option(None, "--seed", help="Training seed (default 0).", show_default=False),
        device: str = typer.Option(None, "--device", help="auto, cpu, cuda or cuda:N (default auto; torchrun gives each process its GPU).", show_default=False),
        amp: str = typer.Option(None, "--amp", help="auto (bf16 autocast on CUDA), bf16 or off.", show_default=False),
        num_workers: int = typer.Option(None, "--num-workers", help="DataLoader worker processes.", show_default=False),
        cache_dir: Path = typer.Option(None, "--cache-dir", help="DACNO2 prepared-data cache (default $XDG_CACHE_HOME/aprior or ~/.cache/aprior).", show_default=False),
        threads: int = typer.Option(None, "--threads", "-j", help="CPU threads to use (default: all cores).", show_default=False),
        resume: bool = typer.Option(False, "--resume", help="Continue the killed or finished run in --out (same weights as an uninterrupted run)."),
        verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More log output."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
    ) -> None:
        """Train DACNO2 phase 1, 2 or 3 (or a DeepCAMS stage with --model deepcams).

        Checkpoints go to OUT: last.pt every epoch, best.pt and weights.pt for the best
        validation loss, metrics.jsonl (and metrics.csv) per epoch. Multi-GPU: launch with
        torchrun. Phases 2 and 3 start from the previous phase's best weights (--from).
        """
        from aprior.models.distributed import env_info

        quiet = quiet or not env_info().is_main  # under torchrun only rank 0 reports
        setup_logging(verbose, quiet)
        apply_threads(threads)
        if model not in MODELS:
            raise ConfigError(f"--model must be dacno2 or deepcams, got {model!r}")
        overrides = _settings_overrides(
            epochs=epochs, lr=lr, batch_size=batch_size, micro_batch=micro_batch,
            max_batches=max_batches, patience=patience, seed=seed, device=device, amp=amp,
            num_workers=num_workers)
        probe_writable(out if out.is_dir() else out.parent)  # before any data is read
        t0 = time.perf_counter()
        with progress_bar(not quiet) as bar:
            show = _Progress(bar, quiet)
            if model == "dacno2":
                if stage is not None:
                    raise ConfigError("--stage is for --model deepcams; DACNO2 takes --phase")
                if phase is None:
                    raise ConfigError("give --phase 1, 2 or 3 (DACNO2 trains in three phases)")
                from aprior.models.dacno2.training import train_phase

                result = train_phase(phase, data, out, preset=preset, config_path=config,
                                     overrides=overrides, from_=from_, cache_dir=cache_dir,
                                     resume=resume, progress=show, prepare_progress=show.prepare,
                                     command=command_line())
                what = f"DACNO2 phase {phase}"
            else:
                result, what = _train_deepcams(stage, phase, from_, data, out, preset, config,
                                               overrides, resume, show)
        if not quiet:
            console.print(
                f"{what}: best epoch {result.best_epoch} (validation loss {result.best_val:.5g}) of "
                f"{result.epochs_run}; weights {result.weights_path}; metrics {result.metrics_path}; "
                f"{result.samples_per_second:.3g} samples/s; {time.perf_counter() - t0:.1f} s",
                highlight=False)


def _train_deepcams(stage, phase, from_, data, out, preset, config, overrides, resume, show):
    if phase is not None or from_ is not None:
        raise ConfigError("--phase and --from are for DACNO2; DeepCAMS takes --stage")
    if stage is None:
        raise ConfigError("give --stage temporal or spatial for --model deepcams")
    from aprior.config import load_toml
    from aprior.models.deepcams.training import train_stage
    from aprior.models.engine import TrainSettings

    table = load_toml(config, "train") if config is not None else {}
    settings = TrainSettings.from_mapping({**table, **overrides})
    result = train_stage(stage, data, out, preset=preset or "small", config=config,
                         settings=settings, resume=resume, progress=show, command=command_line())
    return result, f"DeepCAMS {stage}"
