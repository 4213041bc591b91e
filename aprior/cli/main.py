"""The ``aprior`` command-line tool (typer).

Commands are thin: they parse options into config dataclasses and call the library.
Each command module exposes ``register(app)``.
"""

from __future__ import annotations

import contextlib
import importlib

import typer

from aprior import __version__

app = typer.Typer(
    name="aprior",
    help="High-resolution a-priori NO2 profiles for Sentinel-5P TROPOMI retrievals.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts are plain: "[reprocess]" stays "[reprocess]"
)

#: command modules, in the order their commands appear in --help
COMMAND_MODULES: tuple[str, ...] = (
    "aprior.cli.demo",
    "aprior.cli.reprocess",
    "aprior.cli.compare",
    "aprior.cli.generate",
    "aprior.cli.downscale",
    "aprior.cli.train",
    "aprior.cli.evaluate",
    "aprior.cli.synth",
    "aprior.cli.fetch",
    "aprior.cli.plugins_cmd",
    "aprior.cli.models_cmd",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"aprior {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """High-resolution a-priori NO2 profiles for Sentinel-5P TROPOMI retrievals."""


for _mod in COMMAND_MODULES:
    importlib.import_module(_mod).register(app)


def _click_error(name: str) -> type[Exception]:
    """The click exception class ``name`` of the click that typer uses (typer vendors it)."""
    return next(c for c in typer.BadParameter.__mro__ if c.__name__ == name)


def main() -> None:
    """Run the tool; usage errors (a missing or malformed option) are one line and exit 2."""
    from aprior.cli._common import fail
    from aprior.interrupts import Terminated

    usage_error, click_exception = _click_error("UsageError"), _click_error("ClickException")
    message, code = None, 0
    try:
        rv = app(standalone_mode=False)
        code = rv if isinstance(rv, int) else 0
    except Terminated as exc:  # a signal that lands after the command's own handler
        message, code = "terminated", 128 + exc.signum
    except (typer.Abort, KeyboardInterrupt):
        message, code = "interrupted", 130
    except usage_error as exc:
        ctx = exc.ctx  # type: ignore[attr-defined]
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            typer.echo(ctx.get_help())
            raise SystemExit(0) from None
        name = ctx.command_path.replace("python -m aprior", "aprior") if ctx is not None else "aprior"
        message = f"{exc.format_message()} (see '{name} --help')"  # type: ignore[attr-defined]
        code = exc.exit_code  # type: ignore[attr-defined]
    except click_exception as exc:
        message, code = exc.format_message(), exc.exit_code  # type: ignore[attr-defined]
    except typer.Exit as exc:
        code = exc.exit_code
    if message is not None:
        with contextlib.suppress(typer.Exit):
            fail(message, code)
    raise SystemExit(code)


if __name__ == "__main__":  # python -m aprior.cli.main works like python -m aprior
    main()
