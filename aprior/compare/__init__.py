"""Compare the tropospheric NO2 columns of reprocessed Sentinel-5P L2 files.

``compare(files, out_dir, config)`` compares, per pixel, the original (TM5) column with the
reprocessed one, or two reprocessed sets of the same orbits with each other (and each with
the truth of a synthetic world): statistics per region with exact percentiles, area-weighted
mean maps, and a self-contained HTML report. See docs/compare.md.
"""

from aprior.compare.api import CompareResult, compare, load_regions
from aprior.compare.plan import DEFAULT_REGIONS, CompareConfig

__all__ = ["DEFAULT_REGIONS", "CompareConfig", "CompareResult", "compare", "load_regions"]
