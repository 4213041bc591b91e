"""The built-in sensor plugin: Sentinel-5P TROPOMI L2 NO2 (processor 1.x and 2.x).

Registered as entry point ``s5p-no2`` in the ``aprior.sensors`` group. It glues the
reader (:mod:`aprior.retrieval.s5p_reader`) and the writer
(:mod:`aprior.retrieval.s5p_writer`) to the :class:`~aprior.retrieval.protocols.Sensor`
protocol.
"""

from __future__ import annotations

from os import PathLike

import numpy as np

from aprior.retrieval import s5p_reader
from aprior.retrieval.granule import GranuleBlock, GranuleInfo
from aprior.retrieval.s5p_writer import S5PReprocessedWriter


class S5PNO2Sensor:
    """Sentinel-5P TROPOMI L2 NO2 files (``L2__NO2___``, processor 1.x and 2.x)."""

    name = "s5p-no2"
    description = "Sentinel-5P TROPOMI L2 NO2 (L2__NO2___, processor 1.x/2.x, 34 TM5 layers)"

    def identify(self, path: str | PathLike[str]) -> bool:
        """Cheaply tell whether this sensor reads ``path`` (never raises)."""
        return s5p_reader.identify(path)

    def explain(self, path: str | PathLike[str]) -> str | None:
        """Why ``path`` is declined when it is another S5P product (optional extra)."""
        return s5p_reader.explain(path)

    def open(self, path: str | PathLike[str]) -> GranuleInfo:
        """Validate the file and read its metadata; raises InputFileError naming the file."""
        return s5p_reader.open_granule(path)

    def read_bounds(
        self, info: GranuleInfo, start: int, stop: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Footprint corners ``(latitude_bounds, longitude_bounds)``, each ``(s, p, 4)`` float64."""
        return s5p_reader.read_bounds(info, start, stop)

    def read_block(self, info: GranuleInfo, start: int, stop: int) -> GranuleBlock:
        """Read and decode scanlines ``[start, stop)``."""
        return s5p_reader.read_block(info, start, stop)

    def block_rows(self, info: GranuleInfo, target: int = 512) -> int:
        """A block height near ``target`` aligned on the file's chunks (optional extra)."""
        return s5p_reader.block_rows(info, target)

    def writer(
        self,
        info: GranuleInfo,
        dst: str | PathLike[str],
        *,
        scanlines: tuple[int, int] | None,
        history: str,
        apriori_source: str,
        with_pm25: bool = False,
    ) -> S5PReprocessedWriter:
        """A writer of the reprocessed copy. ``scanlines`` = (start, stop) crops the copy."""
        return S5PReprocessedWriter(
            info,
            dst,
            scanlines=scanlines,
            history=history,
            apriori_source=apriori_source,
            with_pm25=with_pm25,
        )
