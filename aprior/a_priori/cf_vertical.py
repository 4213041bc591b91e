"""The vertical coordinate of a CF variable: heights, pressure levels or hybrid levels.

Identified from the coordinate variable of the vertical dim, in this order:

1. ``formula_terms`` or ``standard_name = atmosphere_hybrid_sigma_pressure_coordinate``:
   hybrid sigma-pressure levels, ``p = ap + b ps`` or ``p = a p0 + b ps``. The interfaces
   come from half-level terms (terms one longer than the levels), the terms' ``bounds``, the
   coordinate's ``bounds`` variable and its ``formula_terms``, or another hybrid coordinate
   one longer (GEOS-Chem's ``ilev``). Term units (Pa, hPa) are honoured. Without ``ps`` in
   the file the levels are placed on the satellite's surface pressure.
2. ``standard_name = air_pressure`` or units of pressure: fixed pressure levels; layer
   interfaces halfway in log-pressure between levels, the lowest far below any surface.
3. ``standard_name`` ``height``/``altitude`` or units of length: heights, above ground unless
   the ``standard_name`` (``altitude``, ``height_above_mean_sea_level``) or ``long_name``
   says sea level; then a surface elevation (``surface_altitude``, ``orog``, ``HGT``...)
   must be in the file. ``positive = "down"`` is refused.

Anything else (bare level numbers, sigma without a pressure) is refused with a message
naming what the coordinate has.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from os import PathLike

import numpy as np
import xarray as xr

from aprior.a_priori.field import PressureLevels
from aprior.a_priori.quantities import check_heights
from aprior.errors import ProfileFieldError
from aprior.units import factor, is_convertible

HYBRID = "atmosphere_hybrid_sigma_pressure_coordinate"
#: Bottom interface of the lowest of fixed pressure levels (Pa): below any surface.
BOTTOM_PA = 110_000.0
_ELEVATION = ("surface_altitude", "orog", "orography", "hgt", "elevation", "topography", "zs",
              "surface_elevation", "terrain_height", "z_surface")
_ASL_NAMES = ("altitude", "height_above_mean_sea_level", "height_above_sea_level")


@dataclass(frozen=True)
class Vertical:
    """A field's vertical coordinate, levels put bottom first by ``order``.

    Attributes:
        order: ``(z,)`` indices of the file's levels, bottom first.
        heights: ``(z,)`` m (bottom first) for fields on heights, else None.
        above_sea_level: the heights are above sea level.
        pressure: the pressure coordinate (bottom first), else None; its
            ``surface_pressure`` is still in the file's (t, y, x) order (see ``ps_var``).
        ps_var: the surface-pressure variable's name, or None.
        ps_factor: its factor to Pa.
    """

    order: np.ndarray
    heights: np.ndarray | None = None
    above_sea_level: bool = False
    pressure: PressureLevels | None = None
    ps_var: str | None = None
    ps_factor: float = 1.0


def _attr(v: xr.DataArray, name: str) -> str:
    return str(v.attrs.get(name, "") or "").strip()


def _pa(ds: xr.Dataset, name: str, path, default_units: str = "Pa") -> np.ndarray:
    v = ds[name]
    units = _attr(v, "units") or default_units
    if not is_convertible(units, "Pa"):
        raise ProfileFieldError(f"{name!r} has units {units!r}; expected a pressure", path)
    return np.asarray(v.values, np.float64) * factor(units, "Pa")


def _terms(text: str) -> dict[str, str]:
    return dict(re.findall(r"(\w+)\s*:\s*(\S+)", text))


def _coefficients(ds: xr.Dataset, terms: dict[str, str], path,
                  units_of: dict[str, str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(A in Pa, B) of a formula_terms dict; ``p = A + B ps``. ``units_of`` gives the units
    of terms whose variable has none (CF bounds inherit their parent's units)."""
    missing = [t for t in ("b", "ps") if t not in terms] + ([] if {"ap", "a"} & set(terms) else ["ap or a"])
    if [m for m in missing if m != "ps"]:
        raise ProfileFieldError(f"formula_terms lack {', '.join(missing)}", path)
    for key, name in terms.items():
        if key != "ps" and name not in ds.variables:
            raise ProfileFieldError(f"formula_terms name {name!r}, which is not in the file", path)
    b = np.asarray(ds[terms["b"]].values, np.float64)
    if "ap" in terms:
        a = _pa(ds, terms["ap"], path, (units_of or {}).get("ap", "Pa"))
    else:
        if "p0" not in terms:
            raise ProfileFieldError("formula_terms 'a: ... b: ... ps: ...' need p0 too", path)
        a = np.asarray(ds[terms["a"]].values, np.float64) * float(_pa(ds, terms["p0"], path).ravel()[0])
    return a, b


def _hybrid(ds: xr.Dataset, coord: xr.DataArray, nz: int, path) -> Vertical:
    terms = _terms(_attr(coord, "formula_terms"))
    if not terms:
        raise ProfileFieldError(
            f"vertical coordinate {coord.name!r} is hybrid sigma-pressure but has no "
            "formula_terms ('ap: AP b: B ps: PS' or 'a: A b: B ps: PS p0: P0')", path)
    a, b = _coefficients(ds, terms, path)
    if a.size == nz + 1:
        a_int, b_int = a, b
    else:
        a_int = b_int = None
        bnd = {t: _attr(ds[terms[t]], "bounds") for t in ("ap", "a", "b") if t in terms}
        if all(bnd.values()):
            ta = {k: bnd.get(k, v) for k, v in terms.items()}
            parent = {"ap": _attr(ds[terms["ap"]], "units") or "Pa"} if "ap" in terms else {}
            ab, bb = _coefficients(ds, ta, path, parent)
        elif _attr(coord, "bounds") and _attr(ds[_attr(coord, "bounds")], "formula_terms"):
            ab, bb = _coefficients(ds, _terms(_attr(ds[_attr(coord, "bounds")], "formula_terms")), path)
        else:
            ab = bb = None
            for name, other in ds.variables.items():
                if (name != coord.name and other.ndim == 1 and other.size == nz + 1
                        and _attr(other, "formula_terms")):
                    a_int, b_int = _coefficients(ds, _terms(_attr(other, "formula_terms")), path)
                    break
        if a_int is None and ab is not None:
            p = ab + bb * 101325.0  # (nz, 2)
            lo, hi = np.argmax(p, axis=1), np.argmin(p, axis=1)
            rows = np.arange(nz)
            order = np.argsort(-p.max(axis=1))
            a_int = np.append(ab[rows, lo][order], ab[rows, hi][order][-1])
            b_int = np.append(bb[rows, lo][order], bb[rows, hi][order][-1])
            if not np.allclose((ab[rows, hi] + bb[rows, hi] * 101325.0)[order][:-1],
                               (ab[rows, lo] + bb[rows, lo] * 101325.0)[order][1:], rtol=1e-4, atol=1e-2):
                raise ProfileFieldError("the hybrid level bounds are not contiguous", path)
            return _hybrid_result(ds, terms, a_int, b_int, order, path)
        if a_int is None:
            raise ProfileFieldError(
                f"hybrid levels {coord.name!r} give full levels only: add the interfaces (CF "
                "'bounds' of the formula terms, or half-level coefficients)", path)
    p = a_int + b_int * 101325.0
    flip = p[0] < p[-1]
    order = np.arange(nz)[::-1] if flip else np.arange(nz)
    if flip:
        a_int, b_int = a_int[::-1], b_int[::-1]
    return _hybrid_result(ds, terms, a_int, b_int, order, path)


def _hybrid_result(ds, terms, a_int, b_int, order, path) -> Vertical:
    ps_var = terms.get("ps") if terms.get("ps") in ds.variables else None
    ps_factor = 1.0
    if ps_var is not None:
        units = _attr(ds[ps_var], "units") or "Pa"
        if not is_convertible(units, "Pa"):
            raise ProfileFieldError(f"surface pressure {ps_var!r} has units {units!r}", path)
        ps_factor = factor(units, "Pa")
    try:
        levels = PressureLevels(a_int, b_int, None, None, terrain_following=True)
    except ValueError as exc:
        raise ProfileFieldError(f"invalid hybrid levels: {exc}", path) from exc
    return Vertical(order=order, pressure=levels, ps_var=ps_var, ps_factor=ps_factor)


def pressure_levels(p_pa: np.ndarray, path) -> Vertical:
    """Fixed pressure levels ``p_pa (z,)`` (file order) as layers with interfaces."""
    p = np.asarray(p_pa, np.float64)
    if not np.all(np.isfinite(p)) or np.any(p <= 0) or p.max() > BOTTOM_PA:
        raise ProfileFieldError(f"pressure levels {p.tolist()[:8]} Pa are not plausible", path)
    order = np.argsort(-p, kind="stable")
    q = p[order]
    if q.size > 1 and not np.all(np.diff(q) < 0):
        raise ProfileFieldError("pressure levels repeat", path)
    mids = np.sqrt(q[:-1] * q[1:])
    top = q[-1] * np.sqrt(q[-1] / q[-2]) if q.size > 1 else q[-1] / 2
    a = np.concatenate([[BOTTOM_PA], mids, [top]])
    return Vertical(order=order, pressure=PressureLevels(a, np.zeros_like(a), terrain_following=False))


def elevation_variable(ds: xr.Dataset) -> str | None:
    """The surface-elevation variable of a file, or None."""
    for name, v in ds.variables.items():
        if _attr(v, "standard_name") == "surface_altitude":
            return str(name)
    return next((str(n) for n in ds.variables if str(n).lower() in _ELEVATION), None)


def vertical(ds: xr.Dataset, var: str, zdim: str | None, path: str | PathLike[str]) -> Vertical:
    """The vertical coordinate of ``ds[var]`` along ``zdim`` (module docstring); a field
    without a vertical dim is one level at the ground."""
    if zdim is None:
        return Vertical(order=np.arange(1), heights=np.zeros(1))
    nz = ds.sizes[zdim]
    if zdim not in ds.variables:
        raise ProfileFieldError(
            f"cannot identify the vertical coordinate of {var!r}: dim {zdim!r} has no "
            "coordinate variable (heights in m, pressure in Pa, or hybrid formula_terms)", path)
    c = ds[zdim]
    std, units, long_name = _attr(c, "standard_name"), _attr(c, "units"), _attr(c, "long_name").lower()
    if std == HYBRID or _attr(c, "formula_terms"):
        return _hybrid(ds, c, nz, path)
    if std == "air_pressure" or (units and is_convertible(units, "Pa")):
        return pressure_levels(np.asarray(c.values, np.float64) * factor(units or "Pa", "Pa"), path)
    if not units and not std and str(zdim).lower() in ("height", "altitude", "z"):
        units = "m"  # a plain xarray file: heights named so; check_heights refuses km
    if std in ("height", *_ASL_NAMES) or (units and is_convertible(units, "m")):
        if _attr(c, "positive").lower() == "down":
            raise ProfileFieldError(f"heights {zdim!r} are positive down; expected heights up", path)
        asl = std in _ASL_NAMES or "sea level" in long_name or "above msl" in long_name
        h = np.asarray(c.values, np.float64) * factor(units or "m", "m")
        check_heights(h, units or "m", name=zdim, path=path, above_sea_level=asl)
        order = np.argsort(h, kind="stable")
        return Vertical(order=order, heights=h[order], above_sea_level=asl)
    what = ", ".join(f"{k}={v!r}" for k, v in c.attrs.items() if isinstance(v, str)) or "no attributes"
    raise ProfileFieldError(
        f"cannot identify the vertical coordinate {zdim!r} of {var!r} ({what}): give it units "
        "of height (m) or pressure (Pa), or the hybrid standard_name with formula_terms", path)
