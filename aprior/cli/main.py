"""The ``aprior`` command-line tool (typer).

Commands are thin: they parse options into config dataclasses and call the library.
Each command module exposes ``register(app)``.
"""

from __future__ import annotations

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


def main() -> None:
    app()
