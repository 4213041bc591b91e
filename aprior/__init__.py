"""aprior: high-resolution a-priori NO2 profiles for Sentinel-5P TROPOMI retrievals."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("aprior")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
