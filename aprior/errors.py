"""Errors that users can cause.

Every exception raised for bad input is an :class:`AprioriError` carrying one clear
sentence: what is wrong, in which file, and what to do. The CLI turns it into a single
line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

from os import PathLike


class AprioriError(Exception):
    """Base class of all errors a user can cause (bad input, bad options)."""

    exit_code: int = 2

    def __init__(self, message: str, path: str | PathLike[str] | None = None) -> None:
        self.path = None if path is None else str(path)
        self.message = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


class InputFileError(AprioriError):
    """An input file is unreadable, of the wrong product, truncated or inconsistent."""


class ProfileFieldError(AprioriError):
    """A profile field has bad values, unknown units or no overlap with the data."""


class ConfigError(AprioriError):
    """A configuration file or option is invalid."""


class OutputExistsError(AprioriError):
    """The output exists and ``--overwrite`` was not given."""


class PluginError(AprioriError):
    """No plugin can handle an input, or a plugin is broken."""
