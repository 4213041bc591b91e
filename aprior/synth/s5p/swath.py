"""Synthetic Sentinel-5P swath geometry: pixel centres, corners, times and angles.

A day-side ascending swath on a spherical Earth seen from S5P's 824 km orbit, with
pixels uniform in the instrument's scan angle (so they widen towards the swath edges)
and corners shared by neighbours. A plausible model for tests and benchmarks, not an
orbit propagator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

R_EARTH_KM = 6371.0
S5P_ALTITUDE_KM = 824.0
SCANLINE_SECONDS = 0.840
"""Time between scanlines at 5.5 km along track (since August 2019)."""
_EARTH_ROTATION_DEG_S = 360.0 / 86164.1


@dataclass(frozen=True)
class SwathGeometry:
    """Pixel geometry of a synthetic swath.

    Attributes (shapes; units):
        latitude, longitude: ``(s, p)``; degrees. Pixel centres.
        latitude_bounds, longitude_bounds: ``(s, p, 4)``; degrees. Corners counter-clockwise
            from the south-west corner (ascending orbit); neighbours share corners.
        time: ``(s,)`` datetime64[ns]; start of each scanline's measurement.
        solar_zenith_angle, viewing_zenith_angle: ``(s, p)``; degrees.
        solar_azimuth_angle, viewing_azimuth_angle: ``(s, p)``; degrees clockwise from
            north, in [-180, 180]; optional.
        satellite_latitude, satellite_longitude: ``(s,)``; degrees; optional.
    """

    latitude: np.ndarray
    longitude: np.ndarray
    latitude_bounds: np.ndarray
    longitude_bounds: np.ndarray
    time: np.ndarray
    solar_zenith_angle: np.ndarray
    viewing_zenith_angle: np.ndarray
    solar_azimuth_angle: np.ndarray | None = None
    viewing_azimuth_angle: np.ndarray | None = None
    satellite_latitude: np.ndarray | None = None
    satellite_longitude: np.ndarray | None = None

    def __post_init__(self) -> None:
        s, p = np.shape(self.latitude)
        pix = (
            "longitude",
            "solar_zenith_angle",
            "viewing_zenith_angle",
            "solar_azimuth_angle",
            "viewing_azimuth_angle",
        )
        for name in pix:
            val = getattr(self, name)
            if val is not None and np.shape(val) != (s, p):
                raise ValueError(f"{name} has shape {np.shape(val)}, expected {(s, p)}")
        for name in ("latitude_bounds", "longitude_bounds"):
            if np.shape(getattr(self, name)) != (s, p, 4):
                raise ValueError(
                    f"{name} has shape {np.shape(getattr(self, name))}, expected {(s, p, 4)}"
                )
        for name in ("time", "satellite_latitude", "satellite_longitude"):
            val = getattr(self, name)
            if val is not None and np.shape(val) != (s,):
                raise ValueError(f"{name} has shape {np.shape(val)}, expected {(s,)}")
        if not np.issubdtype(np.asarray(self.time).dtype, np.datetime64):
            raise ValueError("time must be datetime64")

    @property
    def shape(self) -> tuple[int, int]:
        """(s, p)."""
        return tuple(np.shape(self.latitude))

    @property
    def sza(self) -> np.ndarray:
        """Alias of ``solar_zenith_angle``, ``(s, p)`` degrees."""
        return self.solar_zenith_angle

    @property
    def vza(self) -> np.ndarray:
        """Alias of ``viewing_zenith_angle``, ``(s, p)`` degrees."""
        return self.viewing_zenith_angle


def destination(lat, lon, bearing, dist_km):
    """Great-circle destination; all angles in degrees, broadcasting."""
    phi, lam, th = np.radians(lat), np.radians(lon), np.radians(bearing)
    d = np.asarray(dist_km) / R_EARTH_KM
    phi2 = np.arcsin(np.sin(phi) * np.cos(d) + np.cos(phi) * np.sin(d) * np.cos(th))
    lam2 = lam + np.arctan2(
        np.sin(th) * np.sin(d) * np.cos(phi), np.cos(d) - np.sin(phi) * np.sin(phi2)
    )
    return np.degrees(phi2), (np.degrees(lam2) + 180.0) % 360.0 - 180.0


def _bearing(lat1, lon1, lat2, lon2):
    """Initial great-circle bearing from point 1 to point 2 (degrees)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dl = np.radians(lon2 - lon1)
    return np.degrees(
        np.arctan2(
            np.sin(dl) * np.cos(p2), np.cos(p1) * np.sin(p2) - np.sin(p1) * np.cos(p2) * np.cos(dl)
        )
    )


def _ground_angle(scan_rad):
    """Earth central angle (rad) seen at scan angle ``scan_rad`` from the satellite."""
    ratio = (R_EARTH_KM + S5P_ALTITUDE_KM) / R_EARTH_KM
    return np.arcsin(np.clip(ratio * np.sin(np.abs(scan_rad)), -1, 1)) - np.abs(scan_rad)


def _max_scan_angle(half_swath_km: float) -> float:
    lo, hi = 0.0, float(np.arcsin(R_EARTH_KM / (R_EARTH_KM + S5P_ALTITUDE_KM))) - 1e-9
    if R_EARTH_KM * _ground_angle(hi) < half_swath_km:
        raise ValueError(f"a swath of {2 * half_swath_km} km is wider than the visible Earth disc")
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if R_EARTH_KM * _ground_angle(mid) < half_swath_km else (lo, mid)
    return 0.5 * (lo + hi)


def solar_angles(
    time: np.ndarray, lat: np.ndarray, lon: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Solar zenith and azimuth angles (degrees) from the usual low-precision formulas.

    Args:
        time: datetime64, broadcastable with ``lat``/``lon``.
        lat, lon: degrees.

    Returns:
        (sza, saa): degrees; azimuth clockwise from north in [-180, 180].
    """
    t = np.asarray(time, dtype="datetime64[ns]")
    year_start = t.astype("datetime64[Y]").astype("datetime64[ns]")
    days = (t - year_start) / np.timedelta64(1, "D")
    hours = (t - t.astype("datetime64[D]").astype("datetime64[ns]")) / np.timedelta64(1, "h")
    g = 2.0 * np.pi / 365.0 * (days - 0.5)  # fractional year (rad)
    eqtime = 229.18 * (
        0.000075
        + 0.001868 * np.cos(g)
        - 0.032077 * np.sin(g)
        - 0.014615 * np.cos(2 * g)
        - 0.040849 * np.sin(2 * g)
    )
    decl = (
        0.006918
        - 0.399912 * np.cos(g)
        + 0.070257 * np.sin(g)
        - 0.006758 * np.cos(2 * g)
        + 0.000907 * np.sin(2 * g)
        - 0.002697 * np.cos(3 * g)
        + 0.00148 * np.sin(3 * g)
    )
    solar_minutes = hours * 60.0 + eqtime + 4.0 * np.asarray(lon)
    ha = np.radians(solar_minutes / 4.0 - 180.0)
    phi = np.radians(lat)
    cos_z = np.sin(phi) * np.sin(decl) + np.cos(phi) * np.cos(decl) * np.cos(ha)
    sza = np.degrees(np.arccos(np.clip(cos_z, -1, 1)))
    az = (
        np.degrees(np.arctan2(np.sin(ha), np.cos(ha) * np.sin(phi) - np.tan(decl) * np.cos(phi)))
        + 180.0
    )
    saa = (az + 180.0) % 360.0 - 180.0
    return sza, saa


def synthetic_swath(
    n_scanline: int,
    n_ground_pixel: int = 450,
    *,
    start_time: np.datetime64 | str,
    center_lon: float,
    start_lat: float,
    along_track_km: float = 5.5,
    swath_km: float = 2600.0,
    heading_deg: float = -12.0,
) -> SwathGeometry:
    """A day-side ascending swath: 5.5 km along track, pixels widening towards the edges.

    The nadir track starts at latitude ``start_lat`` with initial bearing ``heading_deg``
    (S5P's 98.7 degree inclination gives about -12 degrees at the equator and -16 over
    central Europe: the track runs north-north-west), follows a great circle and drifts
    west with the Earth's rotation; it is placed in longitude so that the granule's middle
    scanline is at nadir over ``center_lon``. Across track, ground pixels are uniform in the instrument's scan
    angle, mapped on a spherical Earth seen from 824 km: the across-track size is ~3.5 km
    at nadir for 450 pixels over 2600 km and grows to ~14 km at the edges, and the viewing
    zenith angle reaches ~67 degrees. Corners are computed once on an edge grid, so
    neighbouring pixels share corners exactly. Scanlines are 0.84 s apart at 5.5 km.

    Args:
        n_scanline, n_ground_pixel: swath size (s, p).
        start_time: time of the first scanline.
        center_lon: nadir longitude at the middle of the granule, degrees.
        start_lat: nadir latitude of the first scanline's southern edge, degrees.
        along_track_km: scanline spacing.
        swath_km: full swath width.
        heading_deg: initial track bearing, degrees clockwise from north.
    """
    if n_scanline < 1 or n_ground_pixel < 1:
        raise ValueError("a swath needs at least one scanline and one ground pixel")
    start = np.datetime64(start_time, "ns")
    dt_s = SCANLINE_SECONDS * along_track_km / 5.5
    theta_max = _max_scan_angle(swath_km / 2.0)
    scan_edges = np.linspace(-theta_max, theta_max, n_ground_pixel + 1)
    scan_centres = 0.5 * (scan_edges[:-1] + scan_edges[1:])
    x_edges = np.sign(scan_edges) * R_EARTH_KM * _ground_angle(scan_edges)
    x_centres = np.sign(scan_centres) * R_EARTH_KM * _ground_angle(scan_centres)

    def grid(rows: np.ndarray, x: np.ndarray):
        dist = rows * along_track_km
        tlat, tlon = destination(start_lat, center_lon, heading_deg, dist)
        ahead_lat, ahead_lon = destination(start_lat, center_lon, heading_deg, dist + 1.0)
        bearing = _bearing(tlat, tlon, ahead_lat, ahead_lon)
        lat, lon = destination(tlat[:, None], tlon[:, None], bearing[:, None] + 90.0, x[None, :])
        drift = _EARTH_ROTATION_DEG_S * dt_s * rows
        lon = (lon - drift[:, None] + 180.0) % 360.0 - 180.0
        tlon = (tlon - drift + 180.0) % 360.0 - 180.0
        return lat, lon, tlat, tlon, bearing

    elat, elon, *_ = grid(np.arange(n_scanline + 1, dtype=float), x_edges)
    lat, lon, sat_lat, sat_lon, bearing = grid(np.arange(n_scanline) + 0.5, x_centres)
    # centre the granule on center_lon: a pure shift in longitude (rotation about the axis)
    _, mid_lon, *_ = grid(np.array([n_scanline / 2.0]), np.zeros(1))
    shift = float(mid_lon[0, 0]) - center_lon

    def wrap(v: np.ndarray) -> np.ndarray:
        return (v - shift + 180.0) % 360.0 - 180.0

    elon, lon, sat_lon = wrap(elon), wrap(lon), wrap(sat_lon)
    lat_b = np.stack([elat[:-1, :-1], elat[:-1, 1:], elat[1:, 1:], elat[1:, :-1]], axis=-1)
    lon_b = np.stack([elon[:-1, :-1], elon[:-1, 1:], elon[1:, 1:], elon[1:, :-1]], axis=-1)
    time = start + (np.arange(n_scanline) * dt_s * 1e9).astype("timedelta64[ns]")
    ratio = (R_EARTH_KM + S5P_ALTITUDE_KM) / R_EARTH_KM
    vza = np.degrees(np.arcsin(np.clip(ratio * np.sin(np.abs(scan_centres)), -1, 1)))
    vza = np.broadcast_to(vza, lat.shape).copy()
    vaa = bearing[:, None] + np.where(x_centres > 0, -90.0, 90.0)[None, :]
    vaa = (vaa + 180.0) % 360.0 - 180.0
    sza, saa = solar_angles(time[:, None], lat, lon)
    return SwathGeometry(
        latitude=lat,
        longitude=lon,
        latitude_bounds=lat_b,
        longitude_bounds=lon_b,
        time=time,
        solar_zenith_angle=sza,
        viewing_zenith_angle=vza,
        solar_azimuth_angle=saa,
        viewing_azimuth_angle=vaa,
        satellite_latitude=sat_lat,
        satellite_longitude=sat_lon,
    )
