"""In-memory bundles of the sensor side: granule metadata, scanline blocks, results.

Array conventions: ``s`` = scanlines of the block, ``p`` = ground pixels, ``l`` = the 34
TM5 layers (layer 0 at the surface), ``c`` = the 4 footprint corners (counter-clockwise
from the south-west corner in the ascending orbit). The L2 ``time`` dimension (length 1)
is dropped. Fill values are decoded: NaN for floats, -1 for the tropopause index.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

N_TM5_LAYERS = 34


@dataclass(frozen=True)
class GranuleInfo:
    """What is known about an L2 file after opening it (no pixel data).

    Attributes:
        path: the file.
        product: product short name, e.g. "L2__NO2___".
        processor_version: e.g. "2.6.0".
        n_scanline, n_ground_pixel: pixel array size.
        tm5_a: ``(34, 2)`` float64 hybrid A coefficients (Pa); vertex 0 base, 1 top.
        tm5_b: ``(34, 2)`` float64 hybrid B coefficients (1).
        time_reference: datetime64[ns] of the file's ``time_reference``.
        attrs: global attributes.
    """

    path: str
    product: str
    processor_version: str
    n_scanline: int
    n_ground_pixel: int
    tm5_a: np.ndarray
    tm5_b: np.ndarray
    time_reference: np.datetime64
    attrs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class GranuleBlock:
    """Scanlines ``[start, stop)`` of one L2 NO2 file, decoded.

    Attributes (shapes; units):
        latitude, longitude: ``(s, p)``; degrees. Pixel centres.
        latitude_bounds, longitude_bounds: ``(s, p, 4)``; degrees. Footprint corners.
        time: ``(s,)`` datetime64[ns]; observation time of each scanline.
        qa_value: ``(s, p)`` float32 in [0, 1]; NaN where fill.
        no2_trop, no2_trop_precision: ``(s, p)`` float32; mol m-2; NaN where fill.
        averaging_kernel: ``(s, p, 34)`` float32; 1 (total-column kernel).
        amf_trop, amf_total: ``(s, p)`` float32; 1.
        tropopause_index: ``(s, p)`` int32; 0-based index of the highest tropospheric
            layer, -1 where fill.
        surface_pressure: ``(s, p)`` float32; Pa.
    """

    start: int
    stop: int
    latitude: np.ndarray
    longitude: np.ndarray
    latitude_bounds: np.ndarray
    longitude_bounds: np.ndarray
    time: np.ndarray
    qa_value: np.ndarray
    no2_trop: np.ndarray
    no2_trop_precision: np.ndarray
    averaging_kernel: np.ndarray
    amf_trop: np.ndarray
    amf_total: np.ndarray
    tropopause_index: np.ndarray
    surface_pressure: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        """(s, p)."""
        return self.latitude.shape


@dataclass(frozen=True)
class ReprocessedBlock:
    """Results for scanlines ``[start, stop)``; NaN marks fill.

    Attributes (shapes; units):
        no2_trop, no2_trop_precision: ``(s, p)``; mol m-2.
        amf_trop: ``(s, p)``; 1.
        averaging_kernel_trop: ``(s, p, 34)``; 1. Zero above the tropopause layer.
        apriori_partial_columns: ``(s, p, 34)``; mol m-2. The x_l used.
        coverage_fraction: ``(s, p)``; 1. Fraction of the footprint covered by the field.
        pm25_context: ``(s, p)``; ug m-3, or None when no PM2.5 field was given.
        apriori_tropospheric_column: ``(s, p)``; mol m-2. The field's own column at and
            below the tropopause layer, or None.
        apriori_tropospheric_column_smoothed: ``(s, p)``; mol m-2. That column seen
            through the original tropospheric kernel, or None.
    """

    start: int
    stop: int
    no2_trop: np.ndarray
    no2_trop_precision: np.ndarray
    amf_trop: np.ndarray
    averaging_kernel_trop: np.ndarray
    apriori_partial_columns: np.ndarray
    coverage_fraction: np.ndarray
    pm25_context: np.ndarray | None = None
    apriori_tropospheric_column: np.ndarray | None = None
    apriori_tropospheric_column_smoothed: np.ndarray | None = None
