"""``aprior plugins``: list the registered profile sources and sensors."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from aprior import plugins
from aprior.cli._common import handle_errors


def register(app: typer.Typer) -> None:
    @app.command("plugins")
    @handle_errors
    def list_plugins() -> None:
        """List the profile-source and sensor plugins (entry points), built-in and third-party."""
        out = Console()
        for group, title in ((plugins.PROFILE_SOURCES, "profile sources"), (plugins.SENSORS, "sensors")):
            table = Table(title=f"{title} ({group})")
            for col in ("name", "provided by", "target", "description"):
                table.add_column(col)
            for info in plugins.describe(group):
                desc = info.description if info.error is None else f"[red]broken: {info.error}[/]"
                table.add_row(info.name, info.distribution, info.target, desc)
            out.print(table)
