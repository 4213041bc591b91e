"""Open a profile field through the profile-source plugins."""

from __future__ import annotations

import functools
import os
from os import PathLike
from pathlib import Path

from aprior import plugins
from aprior.a_priori.field import ProfileField
from aprior.errors import InputFileError


def open_profile_field(path: str | PathLike[str], source: str | None = None) -> ProfileField:
    """Read a 3D NO2 field with the plugin named ``source``, or the first that recognises it."""
    p = Path(path)
    if not p.exists():
        raise InputFileError("profile file not found", p)
    if not p.is_file():
        raise InputFileError("profile path is not a file", p)
    return plugins.find(plugins.PROFILE_SOURCES, p, source).open(p)


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
