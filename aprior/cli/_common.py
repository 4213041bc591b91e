"""Shared CLI plumbing: error rendering, signals, logging set-up, progress bars, the options
every command shares (``--threads/-j``, ``-v/-q``, ``--overwrite``) and ``--config`` files."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shlex
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from aprior import interrupts
from aprior.errors import AprioriError
from aprior.interrupts import Terminated

F = TypeVar("F", bound=Callable[..., Any])

console = Console(stderr=True)


def fail(message: str, code: int = 2) -> None:
    """Print one line on stderr and exit with ``code`` (newlines in ``message``, e.g. from a
    wrapped library exception, are folded so the error stays one line)."""
    message = " ".join(str(message).split())
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def os_error_message(exc: OSError) -> str:
    """One line for an OSError a user can cause (read-only, no space, missing, too long)."""
    where = exc.filename if exc.filename is not None else ""
    what = exc.strerror or str(exc)
    if isinstance(exc, FileNotFoundError):
        what = "does not exist"
    return f"{where}: {what}" if where else what


def handle_errors(func: F) -> F:
    """Turn AprioriError and OSError into one line and exit code 2; Ctrl-C, SIGTERM and
    SIGHUP into "interrupted" and 128 + the signal number, after every clean-up ran."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        interrupts.install()
        try:
            return func(*args, **kwargs)
        except AprioriError as exc:
            fail(str(exc), exc.exit_code)
        except OSError as exc:
            fail(os_error_message(exc))
        except Terminated as exc:
            what = "interrupted" if exc.signum == signal.SIGINT else \
                f"terminated ({signal.Signals(exc.signum).name})"
            fail(f"{what}; nothing partial was left", 128 + exc.signum)
        except KeyboardInterrupt:
            fail("interrupted", 130)

    return wrapper  # type: ignore[return-value]


def command_line() -> str:
    """The command as the user typed it (``aprior`` and its arguments), for provenance."""
    return "aprior " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def apply_threads(threads: int | None) -> int:
    """Limit the CPU threads of this process (torch, and BLAS/OpenMP of child processes).

    ``None`` or 0 keeps the default (all cores). CPU runs on busy machines are often much
    faster with fewer threads than cores. Returns the number in force.
    """
    if threads is not None and threads < 0:
        from aprior.errors import ConfigError

        raise ConfigError(f"--threads must be 0 (all cores) or more, got {threads}")
    if not threads:
        return os.cpu_count() or 1
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    torch = sys.modules.get("torch")  # imported later, torch reads OMP_NUM_THREADS itself
    if torch is not None:
        torch.set_num_threads(threads)
    return threads


#: help texts of the options every command shares
THREADS_HELP = "CPU threads to use (0: all cores)."
VERBOSE_HELP = "More log output (-vv for debug)."
QUIET_HELP = "Only errors: no progress bar, no summary."
OVERWRITE_HELP = "Replace existing outputs."


def option_key(name: str) -> str:
    """A ``--config`` key or option name as a parameter name: ``--min-coverage``,
    ``min-coverage`` and ``min_coverage`` are all ``min_coverage``."""
    return name.strip().lstrip("-").replace("-", "_")


def config_defaults(path: Path | None, section: str, allowed: set[str]) -> dict[str, Any]:
    """The ``[section]`` table of a TOML ``--config`` file, keys normalised by
    :func:`option_key`; an unknown key is an error naming the file and the key."""
    if path is None:
        return {}
    from aprior.config import load_toml
    from aprior.errors import ConfigError

    raw = load_toml(path, section)
    out = {option_key(k): v for k, v in raw.items()}
    unknown = sorted(set(out) - allowed)
    if unknown:
        raise ConfigError(f"unknown option(s) in [{section}]: {', '.join(unknown)} (keys are the "
                          f"long option names of 'aprior {section}')", path)
    return out


def setup_logging(verbose: int = 0, quiet: bool = False) -> None:
    """Configure logging for the CLI (library code only logs)."""
    level = logging.ERROR if quiet else (logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
    root = logging.getLogger("aprior")
    root.handlers.clear()
    root.addHandler(RichHandler(console=console, show_path=False, markup=False))
    root.setLevel(level)


@contextlib.contextmanager
def progress_bar(enabled: bool = True) -> Iterator[Progress]:
    """A rich progress bar on stderr (disabled output when not a terminal or not enabled)."""
    progress = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not enabled or not sys.stderr.isatty(),
        transient=False,
    )
    with progress:
        yield progress
