"""The profile-source plugin interface.

A profile source turns a file into a :class:`~aprior.a_priori.field.ProfileField`.
Built-in and third-party sources are registered the same way, through the
``aprior.profile_sources`` entry-point group (see :mod:`aprior.plugins`).
"""

from __future__ import annotations

from os import PathLike
from typing import Protocol, runtime_checkable

from aprior.a_priori.field import ProfileField


@runtime_checkable
class ProfileSource(Protocol):
    """Reads one kind of 3D NO2 field file.

    ``open`` returns a field with dims ``(t, z, y, x)`` in ug m-3, heights in m above
    ground, rows ascending in y; it raises :class:`aprior.errors.ProfileFieldError` or
    :class:`aprior.errors.InputFileError` naming the file for anything wrong with it.
    """

    name: str
    description: str

    def identify(self, path: str | PathLike[str]) -> bool:
        """Cheaply tell whether this source reads ``path`` (never raises)."""
        ...

    def open(self, path: str | PathLike[str]) -> ProfileField:
        """Read and validate the field."""
        ...
