"""The sensor plugin interface.

A sensor reads one satellite product's L2 files in scanline blocks and writes the
reprocessed copy. The built-in S5P NO2 sensor and third-party sensors are registered
the same way, through the ``aprior.sensors`` entry-point group (see :mod:`aprior.plugins`).
"""

from __future__ import annotations

from os import PathLike
from typing import Protocol, runtime_checkable

import numpy as np

from aprior.retrieval.granule import GranuleBlock, GranuleInfo, ReprocessedBlock


class ReprocessedWriter(Protocol):
    """Writes a reprocessed copy of one input file; a context manager.

    On a clean exit the output is complete and renamed into place; on an exception no
    output is left behind.
    """

    def write_block(self, block: ReprocessedBlock) -> None: ...

    def __enter__(self) -> ReprocessedWriter: ...

    def __exit__(self, *exc: object) -> None: ...


@runtime_checkable
class Sensor(Protocol):
    name: str
    description: str

    def identify(self, path: str | PathLike[str]) -> bool:
        """Cheaply tell whether this sensor reads ``path`` (never raises)."""
        ...

    def open(self, path: str | PathLike[str]) -> GranuleInfo:
        """Validate the file and read its metadata; raises InputFileError naming the file."""
        ...

    def read_bounds(self, info: GranuleInfo, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Footprint corners of scanlines ``[start, stop)``: ``(latitude_bounds,
        longitude_bounds)``, each ``(s, p, 4)`` float64 degrees, NaN where fill. Reads
        nothing else (the geolocation pass of reprocess)."""
        ...

    def read_block(self, info: GranuleInfo, start: int, stop: int) -> GranuleBlock:
        """Read and decode scanlines ``[start, stop)``."""
        ...

    def writer(
        self,
        info: GranuleInfo,
        dst: str | PathLike[str],
        *,
        scanlines: tuple[int, int] | None,
        history: str,
        apriori_source: str,
        with_pm25: bool = False,
    ) -> ReprocessedWriter:
        """A writer of the reprocessed copy. ``scanlines`` = (start, stop) crops the copy."""
        ...
