"""GEOS-Chem species-concentration files: the ``geos-chem`` profile source.

The layout of GEOS-Chem Classic's netCDF diagnostics (``GEOSChem.SpeciesConc.YYYYMMDD_hhmmz.nc4``,
the ``SpeciesConc`` collection of ``HISTORY.rc``; GEOS-Chem user guide, "History
diagnostics"; the same in GCHP's lat/lon output):

- ``SpeciesConc_NO2(time, lev, lat, lon)``, units ``mol mol-1 dry`` (dry-air mole
  fraction);
- ``lev`` with ``standard_name = atmosphere_hybrid_sigma_pressure_coordinate``,
  ``positive = "up"``, level 1 at the surface, and ``formula_terms``; ``ilev`` the
  interfaces with the half-level coefficients ``hyai`` (hPa) and ``hybi``, ``P0`` = 1000 hPa;
- ``lat``/``lon`` 1D, the 4 x 5, 2 x 2.5 or nested grids.

The species file does not hold the surface pressure (it is ``Met_PSC2DRY`` in the
``StateMet`` or ``LevelEdgeDiags`` collections). When a ``PS``/``Met_PSC2DRY``/
``Met_PSC2WET`` variable is in the file it is used; without one, the hybrid levels are
placed on the satellite's surface pressure (``p = a + b ps``), as KNMI does with TM5.
The 72 (or 47) levels reach 0.01 hPa: no extension is needed.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

from aprior.a_priori.cf_axes import axis_roles
from aprior.a_priori.cf_generic import field_from_dataset, open_dataset
from aprior.a_priori.cf_vertical import vertical
from aprior.a_priori.field import ProfileField
from aprior.a_priori.protocols import netcdf_matches
from aprior.errors import ProfileFieldError
from aprior.units import factor

VAR = "SpeciesConc_NO2"
_PS = ("PS", "Met_PSC2DRY", "Met_PSC2WET", "Met_PS1DRY", "Met_PS1WET", "ps")


def read_geos_chem(path: str | PathLike[str]) -> ProfileField:
    """Read ``SpeciesConc_NO2`` of a GEOS-Chem file (module docstring)."""
    p = Path(path)
    with open_dataset(p) as ds:
        if VAR not in ds.variables:
            raise ProfileFieldError(f"no variable {VAR!r}; is this a GEOS-Chem SpeciesConc file?", p)
        roles = axis_roles(ds, VAR, p)
        if "Z" not in roles:
            raise ProfileFieldError(f"{VAR!r} has no level dimension (a surface-only diagnostic)", p)
        vert = vertical(ds, VAR, roles["Z"], p)
        if vert.pressure is None:
            raise ProfileFieldError(f"{roles['Z']!r} is not a hybrid level coordinate", p)
        if vert.ps_var is None:
            ps = next((n for n in _PS if n in ds.variables), None)
            if ps is not None:
                units = str(ds[ps].attrs.get("units", "") or "hPa")  # GEOS-Chem writes hPa
                vert = type(vert)(order=vert.order, pressure=vert.pressure, ps_var=ps,
                                  ps_factor=factor(units, "Pa"))
        return field_from_dataset(ds, VAR, p, source=f"GEOS-Chem ({p.name})", vert=vert, roles=roles)


class GeosChemSource:
    """The ``geos-chem`` profile source."""

    name = "geos-chem"
    description = "GEOS-Chem SpeciesConc (SpeciesConc_NO2 in mol mol-1 dry on hybrid levels)"

    def identify(self, path: str | PathLike[str]) -> bool:
        return netcdf_matches(path, lambda ds: VAR in ds.variables)

    def open(self, path: str | PathLike[str]) -> ProfileField:
        return read_geos_chem(path)
