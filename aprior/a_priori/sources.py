"""Open a profile field through the profile-source plugins."""

from __future__ import annotations

import functools
import os
from os import PathLike
from pathlib import Path

from aprior import plugins
from aprior.a_priori.field import ProfileField
from aprior.errors import AprioriError, InputFileError, PluginError, ProfileFieldError


def open_profile_field(path: str | PathLike[str], source: str | None = None) -> ProfileField:
    """Read a 3D NO2 field with the plugin named ``source``, or the first that recognises it."""
    p = Path(path)
    if not p.exists():
        raise InputFileError("profile file not found", p)
    if not p.is_file():
        raise InputFileError("profile path is not a file", p)
    try:
        plugin = plugins.find(plugins.PROFILE_SOURCES, p, source)
    except PluginError:
        if source is not None:
            raise
        raise ProfileFieldError(f"no profile source recognises this file: {why_not(p)} "
                                "(see 'aprior plugins' for the layouts)", p) from None
    return plugin.open(p)


def why_not(path: Path) -> str:
    """Why the most likely source, the generic CF reader, cannot read ``path``."""
    from aprior.a_priori.cf_generic import read_cf_netcdf

    try:
        read_cf_netcdf(path)
    except AprioriError as exc:
        return f"read as a CF NO2 field, {getattr(exc, 'message', None) or _bare(exc, path)}"
    return "the CF reader can read it: name it with --profile-source cf-netcdf"


def _bare(exc: Exception, path: Path) -> str:
    text = str(exc)
    prefix = f"{path}: "
    return text[len(prefix):] if text.startswith(prefix) else text


@functools.lru_cache(maxsize=4)
def _cached(path: str, mtime_ns: int, source: str | None) -> ProfileField:
    return open_profile_field(path, source)


def open_profile_field_cached(path: str | PathLike[str], source: str | None = None) -> ProfileField:
    """As :func:`open_profile_field`, cached per process by path and modification time
    (a worker process reprocessing many orbits reads the field once)."""
    p = Path(path).resolve()
    try:
        mtime = os.stat(p).st_mtime_ns
    except OSError:
        raise InputFileError("profile file not found", p) from None
    return _cached(str(p), mtime, source)
