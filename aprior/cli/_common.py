"""Shared CLI plumbing: error rendering, logging set-up, progress bars."""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from aprior.errors import AprioriError

F = TypeVar("F", bound=Callable[..., Any])

console = Console(stderr=True)


def fail(message: str, code: int = 2) -> None:
    """Print one line on stderr and exit with ``code`` (newlines in ``message``, e.g. from a
    wrapped library exception, are folded so the error stays one line)."""
    message = " ".join(str(message).split())
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def handle_errors(func: F) -> F:
    """Turn AprioriError (and a few OS errors) into one line and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except AprioriError as exc:
            fail(str(exc), exc.exit_code)
        except FileNotFoundError as exc:
            fail(f"{exc.filename}: no such file")
        except PermissionError as exc:
            fail(f"{exc.filename}: permission denied")
        except KeyboardInterrupt:
            fail("interrupted", 130)

    return wrapper  # type: ignore[return-value]


def setup_logging(verbose: int = 0, quiet: bool = False) -> None:
    """Configure logging for the CLI (library code only logs)."""
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
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
