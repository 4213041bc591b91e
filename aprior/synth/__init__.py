"""The synthetic world: every input of the toolkit, in its real format, from a known truth.

``aprior synth`` (:func:`generate_world`) writes a self-consistent invented world, static
maps, hourly ERA5-like meteorology, a 3D NO2 truth made by a small transport model, what
a CAMS-like model and EEA-like stations make of it, global PM2.5 fields and Sentinel-5P
orbits, with the truth kept apart under ``truth/``. Tests, benchmarks and the demo run on
it; its physics and layout are described in ``docs/synthetic-world.md`` and in the
docstrings of the modules here:

========================  =============================================================
:mod:`.config`            :class:`SynthConfig`, what world to make
:mod:`.noise`             seeded generators and smooth random fields
:mod:`.geography`         coast, terrain, countries
:mod:`.settlements`       cities, roads, industrial stacks
:mod:`.static_world`      static rasters and emission maps
:mod:`.weather`           pressure systems, clouds, sun
:mod:`.meteo`             ERA5-like single- and pressure-level fields
:mod:`.emissions`         emission time profiles, flights
:mod:`.chemistry`         the 3D NO2 truth (two-layer transport model)
:mod:`.observations`      the CAMS-like field and the EEA-like stations
:mod:`.aerosol`           global PM2.5 (GEOS-CF-like and EAC4-like)
:mod:`.orbits`            Sentinel-5P orbits
:mod:`.files`             writing the static inputs and the truth files
:mod:`.world`             :func:`generate_world`: the day loop
:mod:`.manifest`          writing the world's directory: manifest, READMEs
:mod:`.s5p`               Sentinel-5P L2 NO2 orbits (swath, atmosphere, header, files)
========================  =============================================================
"""

from aprior.synth.config import SynthConfig
from aprior.synth.world import generate_world

__all__ = ["SynthConfig", "generate_world"]
