"""Global and regional coarse grids for DeepCAMS inference: registration, edges, checks.

The networks and baselines of :mod:`aprior.models.deepcams.grid` run on node grids with
periodic longitude. A field the ADS delivers is either

* **global in longitude** (``w * step == 360``): periodic; latitude edges are padded
  across the pole when the grid runs pole to pole, mirrored otherwise (a band such as
  0..90 N); the fine grid has ``3 (h - 1) + 1`` rows and ``3 w`` columns;
* **regional** (an ADS ``area`` such as ``aprior fetch eac4`` requests): not periodic. It
  is *not* padded periodically; instead :func:`extend` mirrors it about its last column
  (even extension, width ``2 w - 2``), which makes every periodic operator see a
  reflecting edge, and :func:`crop` keeps the ``3 (w - 1) + 1`` fine columns between the
  outermost coarse nodes. Latitude edges are mirrored. The fine grid covers exactly the
  box of the coarse nodes: nothing is invented outside the requested area.

Fine node ``(3 j, 3 i)`` is coarse node ``(j, i)`` in both cases. The coarse step must be
``expected_step`` (0.75 degree for EAC4) and regular; anything else is refused with one
sentence (:func:`grid_of`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aprior.errors import ProfileFieldError
from aprior.inputs.pm25 import PM25Field

#: the refinement factor (0.75 -> 0.25 degree)
FACTOR = 3
#: smallest regional box, in coarse nodes per side, that the 4-tap cubic kernels can use
MIN_NODES = 4


@dataclass(frozen=True)
class CoarseGrid:
    """A coarse node grid in network orientation.

    Attributes:
        lat: ``(h,)`` node latitudes, descending (degrees north).
        lon: ``(w,)`` node longitudes, ascending in [-180, 180) (degrees east).
        step: node spacing (degrees), equal in both directions.
        periodic: True when the longitudes are a full circle.
    """

    lat: np.ndarray
    lon: np.ndarray
    step: float
    periodic: bool

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.lat.size), int(self.lon.size)

    @property
    def pole_to_pole(self) -> bool:
        return bool(abs(self.lat[0] - 90.0) < 1e-4 and abs(self.lat[-1] + 90.0) < 1e-4)

    @property
    def lat_pad(self) -> str:
        """Latitude padding for the periodic operators (see :mod:`.grid`)."""
        return "pole" if self.periodic and self.pole_to_pole and self.lon.size % 2 == 0 else "reflect"

    @property
    def work_width(self) -> int:
        """Columns of the (extended) array the operators run on."""
        w = self.lon.size
        return w if self.periodic else 2 * w - 2

    def fine(self) -> tuple[np.ndarray, np.ndarray]:
        """Fine node latitudes ``(3 (h-1) + 1,)`` descending and longitudes (``3 w`` for a
        periodic grid, ``3 (w-1) + 1`` for a regional one), in [-180, 180) unsorted for a
        periodic grid (they start at the first coarse longitude)."""
        h, w = self.shape
        lat = np.linspace(self.lat[0], self.lat[-1], FACTOR * (h - 1) + 1)
        n = FACTOR * w if self.periodic else FACTOR * (w - 1) + 1
        lon = self.lon[0] + np.arange(n) * (self.step / FACTOR)
        return lat, (lon + 180.0) % 360.0 - 180.0


def grid_of(field: PM25Field, expected_step: float | None = 0.75, what: str = "EAC4") -> CoarseGrid:
    """The coarse grid of a reader's field (lat ascending, lon in [-180, 180)).

    Args:
        field: the field.
        expected_step: required node spacing in degrees (None: any regular spacing).

    Raises:
        ProfileFieldError: irregular spacing, unequal lat/lon steps, the wrong step, or a
            box smaller than :data:`MIN_NODES` nodes a side.
    """
    lat, lon = np.asarray(field.lat, np.float64), np.asarray(field.lon, np.float64)
    ny, nx = lat.size, lon.size
    desc = f"{ny} x {nx} nodes, lat {lat[0]:g}..{lat[-1]:g}, lon {lon[0]:g}..{lon[-1]:g}"
    if ny < MIN_NODES or nx < MIN_NODES:
        raise ProfileFieldError(f"the {what} PM2.5 grid ({desc}) is smaller than {MIN_NODES} x "
                                f"{MIN_NODES} nodes; request a larger area")
    dlat, dlon = np.diff(lat), np.diff(lon)
    step = float(np.median(dlon))
    regular = (np.allclose(dlat, dlat[0], atol=1e-3) and np.allclose(dlon, step, atol=1e-3)
               and abs(dlat[0] - step) < 1e-3)
    if not regular:
        raise ProfileFieldError(f"the {what} PM2.5 field is not on a regular lat/lon grid with "
                                f"equal steps ({desc})")
    if expected_step is not None and abs(step - expected_step) > 1e-3:
        raise ProfileFieldError(f"the {what} PM2.5 grid has a {step:g} degree step ({desc}); "
                                f"{expected_step:g} degree is expected")
    periodic = abs(nx * step - 360.0) < 1e-3
    if not periodic and (lon[-1] - lon[0]) > 360.0 - step + 1e-3:
        raise ProfileFieldError(f"the {what} PM2.5 longitudes overlap themselves ({desc})")
    return CoarseGrid(lat[::-1].copy(), lon.copy(), step, periodic)


def to_nodes(field: PM25Field) -> np.ndarray:
    """``(t, h, w)`` float32 values in network orientation (lat descending, lon as given)."""
    return np.ascontiguousarray(field.values[:, ::-1, :], dtype=np.float32)


def extend(x: np.ndarray, grid: CoarseGrid) -> np.ndarray:
    """The array the periodic operators run on: ``x`` itself for a periodic grid, else the
    even extension ``[x_0 .. x_{w-1}, x_{w-2} .. x_1]`` along the last axis (``2 w - 2``)."""
    if grid.periodic:
        return x
    return np.concatenate([x, x[..., -2:0:-1]], axis=-1)


def crop(fine: np.ndarray, grid: CoarseGrid) -> np.ndarray:
    """Undo :func:`extend` on fine output ``(..., 3 (h-1) + 1, 3 w_work)``."""
    if grid.periodic:
        return fine
    return fine[..., : FACTOR * (grid.lon.size - 1) + 1]


def to_field(fine: np.ndarray, times: np.ndarray, grid: CoarseGrid, source: str) -> PM25Field:
    """A reader-oriented :class:`PM25Field` (lat ascending, lon ascending in [-180, 180)).

    Args:
        fine: ``(t, 3 (h-1) + 1, n)`` fine node values, lat descending, lon from the first
            coarse longitude (``n`` as :meth:`CoarseGrid.fine`).
    """
    lat, lon = grid.fine()
    order = np.argsort(lon, kind="stable")
    vals = fine[:, ::-1, :][:, :, order]
    return PM25Field(np.asarray(times), lat[::-1].copy(), lon[order],
                     np.ascontiguousarray(vals, np.float32), source)


__all__ = ["FACTOR", "MIN_NODES", "CoarseGrid", "crop", "extend", "grid_of", "to_field", "to_nodes"]
