"""``aprior fetch``: download ERA5, CAMS European NO2 or EAC4 PM2.5 from the Copernicus
data stores into a cache (or print the requests with ``--dry-run``)."""

from __future__ import annotations

import datetime as dt
import json
import os
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from aprior.cli._common import QUIET_HELP, VERBOSE_HELP, console, handle_errors, setup_logging
from aprior.errors import ConfigError
from aprior.grids.regions import load_region
from aprior.inputs import fetch as fetch_lib


class Product(str, Enum):
    era5 = "era5"
    cams = "cams"
    eac4 = "eac4"


def default_cache() -> Path:
    """``$APRIOR_CACHE`` or ``~/.cache/aprior/downloads``."""
    env = os.environ.get("APRIOR_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "aprior" / "downloads"


def _date(text: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(f"{option} must be a date YYYY-MM-DD, got {text!r}") from exc


def register(app: typer.Typer) -> None:
    """Add the ``fetch`` command to ``app``."""

    @app.command("fetch")
    @handle_errors
    def fetch(
        product: Annotated[Product, typer.Argument(
            help="era5 (single + pressure levels), cams (European NO2 on height levels) or "
                 "eac4 (global PM2.5).")],
        start: Annotated[str, typer.Option("--start", help="First day, YYYY-MM-DD.")],
        end: Annotated[str, typer.Option("--end", help="Last day (included), YYYY-MM-DD.")],
        region: Annotated[str, typer.Option(
            "--region", help="Region name, 'west,south,east,north' or a GeoJSON file.")] = "domain",
        cache: Annotated[Path | None, typer.Option(
            "--cache", help="Download cache (default: $APRIOR_CACHE or ~/.cache/aprior/downloads).",
            show_default=False)] = None,
        dry_run: Annotated[bool, typer.Option(
            "--dry-run", help="Print the requests as JSON; download nothing.")] = False,
        cams_product: Annotated[str, typer.Option(
            "--cams-product", help="cams: 'reanalysis' (monthly) or 'analysis' (daily).")] = "reanalysis",
        cams_type: Annotated[str, typer.Option(
            "--cams-type", help="cams reanalysis: 'validated' or 'interim'.")] = "validated",
        verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help=VERBOSE_HELP)] = 0,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP)] = False,
    ) -> None:
        """Download inputs from the Copernicus CDS/ADS (needs: pip install 'aprior[fetch]')."""
        setup_logging(verbose, quiet)
        first, last = _date(start, "--start"), _date(end, "--end")
        bbox = load_region(region).bbox
        options = {"cams_product": cams_product, "kind": cams_type} if product is Product.cams else {}
        requests = fetch_lib.build_requests(product.value, first, last, bbox, **options)
        cache_dir = cache if cache is not None else default_cache()
        if dry_run:
            typer.echo(json.dumps([r.to_json(cache_dir) for r in requests], indent=2))
            return
        if not quiet:
            console.print(f"{len(requests)} request(s) for {product.value}, cache {cache_dir}",
                          highlight=False)

        def done(path: Path, fresh: bool) -> None:
            if not quiet:
                console.print(f"{'downloaded' if fresh else 'cached    '} {path}", highlight=False)

        paths = fetch_lib.download(requests, cache_dir, on_done=done)
        for p in paths:
            typer.echo(str(p))
