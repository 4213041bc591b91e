"""The profile-source plugin interface.

A profile source turns a file into a :class:`~aprior.a_priori.field.ProfileField`.
Built-in and third-party sources are registered the same way, through the
``aprior.profile_sources`` entry-point group (see :mod:`aprior.plugins`).
"""

from __future__ import annotations

from collections.abc import Callable
from os import PathLike
from typing import Protocol, runtime_checkable

import netCDF4

from aprior.a_priori.field import ProfileField


@runtime_checkable
class ProfileSource(Protocol):
    """Reads one kind of 3D NO2 field file.

    ``open`` returns a field with dims ``(t, z, y, x)``, rows ascending in y and levels from
    the surface up: a mass concentration (ug m-3) or a dry-air mole fraction (mol mol-1), on
    heights (above ground, or above sea level with a surface elevation) or on pressure
    (hybrid, fixed pressure levels or 3D interface pressures); see
    :class:`aprior.a_priori.field.ProfileField`. It raises
    :class:`aprior.errors.ProfileFieldError` or :class:`aprior.errors.InputFileError` naming
    the file for anything wrong with it, including values implausible for their units.
    """

    name: str
    description: str

    def identify(self, path: str | PathLike[str]) -> bool:
        """Cheaply tell whether this source reads ``path`` (never raises)."""
        ...

    def open(self, path: str | PathLike[str]) -> ProfileField:
        """Read and validate the field."""
        ...


def netcdf_matches(path: str | PathLike[str], test: Callable[[netCDF4.Dataset], bool]) -> bool:
    """Whether ``path`` opens as netCDF and ``test(dataset)`` holds; never raises.

    The body of most sources' ``identify``: cheap (the header only) and silent on any file
    that is not netCDF or not of the source's layout.
    """
    try:
        with netCDF4.Dataset(path, "r") as ds:
            return bool(test(ds))
    except Exception:  # identify never raises
        return False
