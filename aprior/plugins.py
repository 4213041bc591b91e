"""Plugin registry: profile sources and sensors, through entry points.

Built-ins are registered through this package's own entry points, so first- and
third-party plugins take the same path. Entry points are loaded lazily; a plugin that
fails to load is skipped with a warning instead of breaking the tool.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib.metadata import entry_points
from os import PathLike
from pathlib import Path
from typing import Any

from aprior.errors import InputFileError, PluginError

log = logging.getLogger(__name__)

PROFILE_SOURCES = "aprior.profile_sources"
SENSORS = "aprior.sensors"
GROUPS = (PROFILE_SOURCES, SENSORS)


@dataclass(frozen=True)
class PluginInfo:
    group: str
    name: str
    target: str
    distribution: str
    description: str
    error: str | None = None


def _entry_points(group: str) -> list:
    return sorted(entry_points(group=group), key=lambda ep: ep.name)


def load(group: str, name: str) -> Any:
    """Instantiate the plugin ``name`` of ``group``."""
    for ep in _entry_points(group):
        if ep.name == name:
            try:
                return ep.load()()
            except Exception as exc:  # a broken plugin must not crash the tool
                raise PluginError(f"plugin {name!r} of {group} failed to load: {exc}") from exc
    known = ", ".join(ep.name for ep in _entry_points(group)) or "none"
    raise PluginError(f"no plugin {name!r} in {group} (known: {known})")


def load_all(group: str) -> list[Any]:
    """Instantiate every loadable plugin of ``group``; broken ones are skipped with a warning."""
    out = []
    for ep in _entry_points(group):
        try:
            out.append(ep.load()())
        except Exception as exc:
            log.warning("skipping plugin %s (%s): %s", ep.name, ep.value, exc)
    return out


def describe(group: str) -> list[PluginInfo]:
    """Information about every registered plugin of ``group``, loadable or not."""
    infos = []
    for ep in _entry_points(group):
        dist = getattr(getattr(ep, "dist", None), "name", "?")
        try:
            obj = ep.load()()
            infos.append(PluginInfo(group, ep.name, ep.value, dist, getattr(obj, "description", "")))
        except Exception as exc:
            infos.append(PluginInfo(group, ep.name, ep.value, dist, "", error=str(exc)))
    return infos


def find(group: str, path: str | PathLike[str], name: str | None = None) -> Any:
    """The plugin named ``name``, or the first of ``group`` whose ``identify(path)`` is true."""
    if name is not None:
        return load(group, name)
    for plugin in load_all(group):
        try:
            if plugin.identify(path):
                return plugin
        except Exception as exc:
            log.warning("plugin %s failed to identify %s: %s", plugin.name, path, exc)
    if not Path(path).exists():
        raise InputFileError("does not exist", path)
    kind = "profile source" if group == PROFILE_SOURCES else "sensor"
    for plugin in load_all(group):
        explain = getattr(plugin, "explain", None)  # optional: why a plugin declines the file
        if explain is None:
            continue
        try:
            why = explain(path)
        except Exception as exc:
            log.warning("plugin %s failed to explain %s: %s", plugin.name, path, exc)
            continue
        if why:
            raise PluginError(f"{why} (no {kind} plugin reads it; see 'aprior plugins')", path)
    raise PluginError(f"no {kind} recognises this file (see 'aprior plugins')", path)
