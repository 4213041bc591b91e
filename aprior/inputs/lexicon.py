"""Our names -> the names of the data stores (CDS/ADS datasets, request values) and the
variable names in the files they deliver.

ERA5 variables are described once, in :data:`aprior.inputs.era5.LEXICON` (request
name ``cds_name``, file name = our short name); this module re-exports them so that every
product name can be found here.
"""

from __future__ import annotations

from dataclasses import dataclass

from aprior.inputs.era5 import (
    DEFAULT_PRESSURE_LEVELS_HPA,
    PRESSURE_LEVEL_VARIABLES,
    SINGLE_LEVEL_VARIABLES,
)
from aprior.inputs.era5 import LEXICON as ERA5_LEXICON

#: Climate Data Store (ERA5) and Atmosphere Data Store (CAMS)
SERVICES = ("cds", "ads")

ERA5_SINGLE_LEVELS = "reanalysis-era5-single-levels"
ERA5_PRESSURE_LEVELS = "reanalysis-era5-pressure-levels"
CAMS_EU_REANALYSES = "cams-europe-air-quality-reanalyses"
CAMS_EU_FORECASTS = "cams-europe-air-quality-forecasts"
CAMS_EAC4 = "cams-global-reanalysis-eac4"

#: dataset -> service that serves it
DATASET_SERVICE = {
    ERA5_SINGLE_LEVELS: "cds",
    ERA5_PRESSURE_LEVELS: "cds",
    CAMS_EU_REANALYSES: "ads",
    CAMS_EU_FORECASTS: "ads",
    CAMS_EAC4: "ads",
}


@dataclass(frozen=True)
class ProductVariable:
    """One variable of a product: what to ask for and what comes back.

    Attributes:
        request: the value of the request's ``variable`` key.
        file_name: the variable's name in the delivered netCDF.
        units: the units in the delivered file.
    """

    request: str
    file_name: str
    units: str


#: CAMS European air quality (ensemble median): NO2 mass concentration on height levels.
CAMS_EU_VARIABLES = {"no2": ProductVariable("nitrogen_dioxide", "no2_conc", "ug m-3")}
#: The ten height levels of the CAMS European products (m above ground), as request values.
CAMS_EU_LEVELS_M = (0, 50, 100, 250, 500, 750, 1000, 2000, 3000, 5000)
#: CAMS European model whose fields DACNO2 uses.
CAMS_EU_MODEL = "ensemble"
#: ``type`` values of the reanalyses (validated: about two years behind; interim: newer).
CAMS_EU_REANALYSIS_TYPES = {"validated": "validated_reanalysis", "interim": "interim_reanalysis"}

#: CAMS global reanalysis EAC4: PM2.5, 3-hourly.
EAC4_VARIABLES = {"pm2p5": ProductVariable("particulate_matter_2.5um", "pm2p5", "kg m**-3")}
EAC4_TIMES = tuple(f"{h:02d}:00" for h in range(0, 24, 3))

#: GEOS-CF (NASA GMAO, https://fluid.nccs.nasa.gov/cf/): not on the CDS/ADS.
GEOSCF_COLLECTION = "chm_tavg_1hr_g1440x721_v1"
GEOSCF_VARIABLES = {"pm25": ProductVariable("PM25_RH35_GCC", "PM25_RH35_GCC", "ug m-3")}


def era5_request_names(variables: tuple[str, ...]) -> list[str]:
    """CDS request names of ERA5 short names (KeyError for an unknown one)."""
    return [ERA5_LEXICON[v].cds_name for v in variables]


__all__ = [
    "CAMS_EAC4", "CAMS_EU_FORECASTS", "CAMS_EU_LEVELS_M", "CAMS_EU_MODEL",
    "CAMS_EU_REANALYSES", "CAMS_EU_REANALYSIS_TYPES", "CAMS_EU_VARIABLES", "DATASET_SERVICE",
    "DEFAULT_PRESSURE_LEVELS_HPA", "EAC4_TIMES", "EAC4_VARIABLES", "ERA5_LEXICON",
    "ERA5_PRESSURE_LEVELS", "ERA5_SINGLE_LEVELS", "GEOSCF_COLLECTION", "GEOSCF_VARIABLES",
    "PRESSURE_LEVEL_VARIABLES", "SERVICES", "SINGLE_LEVEL_VARIABLES", "ProductVariable",
    "era5_request_names",
]
