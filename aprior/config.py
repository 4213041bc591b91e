"""Loading configuration dataclasses from TOML.

Every CLI option maps to one field of a config dataclass; a TOML file given with
``--config`` supplies defaults that explicit options override.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

import tomllib

from aprior.errors import ConfigError

T = TypeVar("T")


def load_toml(path: str | Path, section: str | None = None) -> dict[str, Any]:
    """Read a TOML file (optionally one table of it) into a dict; errors name the file."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise ConfigError("configuration file not found", p) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not valid TOML: {exc}", p) from None
    if section is not None:
        data = data.get(section, {})
        if not isinstance(data, dict):
            raise ConfigError(f"[{section}] must be a table", p)
    return data


def from_dict(cls: type[T], data: dict[str, Any], *, source: str | None = None) -> T:
    """Build dataclass ``cls`` from a dict, recursing into nested dataclass fields.

    Unknown keys are an error (a typo must not be silently ignored).
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"unknown option(s) {', '.join(unknown)} for {cls.__name__}", source)
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        ftype = fields[name].type
        default = fields[name].default_factory if fields[name].default_factory is not dataclasses.MISSING else None  # type: ignore[misc]
        sub = default() if callable(default) else None
        if isinstance(value, dict) and dataclasses.is_dataclass(sub):
            kwargs[name] = from_dict(type(sub), value, source=source)
        elif isinstance(value, list) and "tuple" in str(ftype):
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid configuration for {cls.__name__}: {exc}", source) from None
