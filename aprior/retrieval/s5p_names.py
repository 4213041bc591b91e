"""Lexicon: our names for Sentinel-5P TROPOMI L2 NO2 variables -> paths in the product.

One table for processor 1.x and 2.x. Each entry gives the path used by processor 2.x
(the layout of the operational 2.6.0 header the package schema was made from), followed
by fallbacks tried in order. As far as the Product User Manuals of 1.x and 2.x tell, the
variables the retrieval needs sit at the same paths in 1.x; the fallbacks cover sibling
layouts (the S5P HCHO product keeps ``tm5_constant_a/b`` in ``INPUT_DATA``) and older
cloud-variable names. ``delta_time`` is ``(time, scanline)`` in 2.x and in most 1.x
files, ``(time, scanline, ground_pixel)`` in some early ones; the reader accepts both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

PRODUCT_SHORT_NAME = "L2__NO2___"
"""``METADATA/GRANULE_DESCRIPTION`` attribute ``ProductShortName`` of an NO2 file."""

GRANULE_DESCRIPTION = "METADATA/GRANULE_DESCRIPTION"
PRODUCT = "PRODUCT"
GEOLOCATIONS = "PRODUCT/SUPPORT_DATA/GEOLOCATIONS"
DETAILED_RESULTS = "PRODUCT/SUPPORT_DATA/DETAILED_RESULTS"
INPUT_DATA = "PRODUCT/SUPPORT_DATA/INPUT_DATA"
APRIORI_REPLACEMENT = "PRODUCT/SUPPORT_DATA/APRIORI_REPLACEMENT"
"""Group added by aprior to the reprocessed copy."""


@dataclass(frozen=True)
class Entry:
    """Where one quantity lives: the 2.x path first, then alternatives."""

    paths: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.paths:
            raise ValueError("an entry needs at least one path")

    @property
    def path(self) -> str:
        """The path used by processor 2.x."""
        return self.paths[0]

    @property
    def name(self) -> str:
        """The variable name (last path component of the 2.x path)."""
        return self.path.rsplit("/", 1)[-1]


def _e(*paths: str) -> Entry:
    return Entry(tuple(paths))


NAMES: Mapping[str, Entry] = {
    # pixel data, PRODUCT
    "latitude": _e(f"{PRODUCT}/latitude"),
    "longitude": _e(f"{PRODUCT}/longitude"),
    "time": _e(f"{PRODUCT}/time"),
    "delta_time": _e(f"{PRODUCT}/delta_time"),
    "time_utc": _e(f"{PRODUCT}/time_utc"),
    "scanline": _e(f"{PRODUCT}/scanline"),
    "ground_pixel": _e(f"{PRODUCT}/ground_pixel"),
    "layer": _e(f"{PRODUCT}/layer"),
    "qa_value": _e(f"{PRODUCT}/qa_value"),
    "no2_trop": _e(f"{PRODUCT}/nitrogendioxide_tropospheric_column"),
    "no2_trop_precision": _e(f"{PRODUCT}/nitrogendioxide_tropospheric_column_precision"),
    "no2_trop_precision_kernel": _e(
        f"{PRODUCT}/nitrogendioxide_tropospheric_column_precision_kernel"
    ),
    "averaging_kernel": _e(f"{PRODUCT}/averaging_kernel"),
    "amf_trop": _e(f"{PRODUCT}/air_mass_factor_troposphere"),
    "amf_total": _e(f"{PRODUCT}/air_mass_factor_total"),
    "tropopause_index": _e(f"{PRODUCT}/tm5_tropopause_layer_index"),
    "tm5_constant_a": _e(f"{PRODUCT}/tm5_constant_a", f"{INPUT_DATA}/tm5_constant_a"),
    "tm5_constant_b": _e(f"{PRODUCT}/tm5_constant_b", f"{INPUT_DATA}/tm5_constant_b"),
    # geolocation
    "latitude_bounds": _e(f"{GEOLOCATIONS}/latitude_bounds"),
    "longitude_bounds": _e(f"{GEOLOCATIONS}/longitude_bounds"),
    "solar_zenith_angle": _e(f"{GEOLOCATIONS}/solar_zenith_angle"),
    "solar_azimuth_angle": _e(f"{GEOLOCATIONS}/solar_azimuth_angle"),
    "viewing_zenith_angle": _e(f"{GEOLOCATIONS}/viewing_zenith_angle"),
    "viewing_azimuth_angle": _e(f"{GEOLOCATIONS}/viewing_azimuth_angle"),
    "satellite_latitude": _e(f"{GEOLOCATIONS}/satellite_latitude"),
    "satellite_longitude": _e(f"{GEOLOCATIONS}/satellite_longitude"),
    "satellite_altitude": _e(f"{GEOLOCATIONS}/satellite_altitude"),
    "satellite_orbit_phase": _e(f"{GEOLOCATIONS}/satellite_orbit_phase"),
    "geolocation_flags": _e(f"{GEOLOCATIONS}/geolocation_flags"),
    # input data
    "surface_pressure": _e(f"{INPUT_DATA}/surface_pressure"),
    "surface_altitude": _e(f"{INPUT_DATA}/surface_altitude"),
    "surface_albedo": _e(
        f"{INPUT_DATA}/surface_albedo_nitrogendioxide_window", f"{INPUT_DATA}/surface_albedo"
    ),
    "cloud_pressure": _e(f"{INPUT_DATA}/cloud_pressure_crb"),
    "cloud_fraction": _e(
        f"{DETAILED_RESULTS}/cloud_fraction_crb_nitrogendioxide_window",
        f"{INPUT_DATA}/cloud_fraction_crb",
    ),
    "cloud_radiance_fraction": _e(
        f"{DETAILED_RESULTS}/cloud_radiance_fraction_nitrogendioxide_window"
    ),
    # detailed results
    "no2_slant": _e(f"{DETAILED_RESULTS}/nitrogendioxide_slant_column_density"),
    "no2_slant_precision": _e(f"{DETAILED_RESULTS}/nitrogendioxide_slant_column_density_precision"),
    "no2_strat": _e(f"{DETAILED_RESULTS}/nitrogendioxide_stratospheric_column"),
    "no2_strat_precision": _e(f"{DETAILED_RESULTS}/nitrogendioxide_stratospheric_column_precision"),
    "no2_total": _e(f"{DETAILED_RESULTS}/nitrogendioxide_total_column"),
    "no2_total_precision": _e(f"{DETAILED_RESULTS}/nitrogendioxide_total_column_precision"),
    "no2_total_precision_kernel": _e(
        f"{DETAILED_RESULTS}/nitrogendioxide_total_column_precision_kernel"
    ),
    "no2_summed_total": _e(f"{DETAILED_RESULTS}/nitrogendioxide_summed_total_column"),
    "no2_summed_total_precision": _e(
        f"{DETAILED_RESULTS}/nitrogendioxide_summed_total_column_precision"
    ),
    "no2_geometric": _e(f"{DETAILED_RESULTS}/nitrogendioxide_geometric_column"),
    "amf_strat": _e(f"{DETAILED_RESULTS}/air_mass_factor_stratosphere"),
    "amf_clear": _e(f"{DETAILED_RESULTS}/air_mass_factor_clear"),
    "amf_cloudy": _e(f"{DETAILED_RESULTS}/air_mass_factor_cloudy"),
    "processing_quality_flags": _e(f"{DETAILED_RESULTS}/processing_quality_flags"),
}
"""Our name -> :class:`Entry`."""

READ_VARIABLES: tuple[str, ...] = (
    "latitude",
    "longitude",
    "latitude_bounds",
    "longitude_bounds",
    "time",
    "delta_time",
    "qa_value",
    "no2_trop",
    "no2_trop_precision",
    "averaging_kernel",
    "amf_trop",
    "amf_total",
    "tropopause_index",
    "surface_pressure",
    "tm5_constant_a",
    "tm5_constant_b",
)
"""What :func:`aprior.retrieval.s5p_reader.read_block` needs; all are required."""

REPROCESSED_SUFFIX = "_reprocessed"
REPROCESSED: Mapping[str, str] = {
    "no2_trop": "nitrogendioxide_tropospheric_column",
    "no2_trop_precision": "nitrogendioxide_tropospheric_column_precision",
    "amf_trop": "air_mass_factor_troposphere",
    "averaging_kernel_trop": "averaging_kernel",
}
"""Field of :class:`~aprior.retrieval.granule.ReprocessedBlock` -> the PRODUCT variable whose
layout (dims, dtype, chunks, compression, fill, attributes) the reprocessed copy takes.
The added variable is named after the original plus :data:`REPROCESSED_SUFFIX`, except the
kernel, which is the tropospheric kernel: ``averaging_kernel_troposphere_reprocessed``."""


def reprocessed_name(field: str) -> str:
    """Name of the PRODUCT variable written for a ReprocessedBlock field."""
    if field == "averaging_kernel_trop":
        return "averaging_kernel_troposphere" + REPROCESSED_SUFFIX
    return REPROCESSED[field] + REPROCESSED_SUFFIX


def path_of(name: str) -> str:
    """The 2.x product path of one of our names."""
    try:
        return NAMES[name].path
    except KeyError:
        raise KeyError(
            f"unknown S5P NO2 quantity {name!r}; known: {', '.join(sorted(NAMES))}"
        ) from None


def resolve(name: str, exists) -> str | None:
    """The first path of ``name`` for which ``exists(path)`` is true, or None.

    Args:
        name: one of our names (a key of :data:`NAMES`).
        exists: callable telling whether a path exists in the open file.
    """
    for path in NAMES[name].paths:
        if exists(path):
            return path
    return None
