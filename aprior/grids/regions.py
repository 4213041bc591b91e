"""Named regions and user regions (lon/lat boxes or GeoJSON polygons).

Regions select where models are trained, run and compared. A region is a lon/lat box
(degrees, WGS84), optionally with a polygon inside it. The named boxes:

=========  ===============================  =====================================================
name       box (west, south, east, north)    what it is
=========  ===============================  =====================================================
domain     (-5.0, 42.0, 9.0, 54.0)          the DACNO2 domain (Western Europe)
northern   (2.5, 49.4, 8.0, 53.6)           the paper's northern region: Netherlands, Belgium,
                                            the Ruhr
paris      (1.4, 48.1, 3.6, 49.3)           Paris and the Ile-de-France
alps       (5.5, 44.0, 9.0, 47.5)           the western Alps, within the domain (east edge 9E)
benelux    (2.5, 49.4, 7.3, 53.6)           Belgium, the Netherlands, Luxembourg
demo       (3.0, 49.5, 7.0, 52.5)           small default (about 280 x 330 km): Benelux cities,
                                            the North Sea coast, the Ardennes, the Ruhr edge
=========  ===============================  =====================================================

:func:`load_region` also takes a ``"w,s,e,n"`` string or a GeoJSON file (RFC 7946:
lon/lat WGS84) holding a Polygon or MultiPolygon geometry, Feature or FeatureCollection
(all polygons are united).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np

from aprior.errors import ConfigError

#: The DACNO2 domain, lon/lat (west, south, east, north) in degrees.
DOMAIN_BBOX = (-5.0, 42.0, 9.0, 54.0)

log = logging.getLogger(__name__)

BBox = tuple[float, float, float, float]

#: Named lon/lat boxes (west, south, east, north), degrees.
REGIONS: dict[str, BBox] = {
    "domain": DOMAIN_BBOX,
    "northern": (2.5, 49.4, 8.0, 53.6),
    "paris": (1.4, 48.1, 3.6, 49.3),
    "alps": (5.5, 44.0, 9.0, 47.5),
    "benelux": (2.5, 49.4, 7.3, 53.6),
    "demo": (3.0, 49.5, 7.0, 52.5),
}

#: The region used when none is given (small enough for a laptop).
DEFAULT_REGION = "demo"


def _check_bbox(bbox: BBox, what: str) -> BBox:
    if len(bbox) != 4:
        raise ConfigError(f"{what}: a box needs four numbers west,south,east,north")
    w, s, e, n = (float(v) for v in bbox)
    if not all(math.isfinite(v) for v in (w, s, e, n)):
        raise ConfigError(f"{what}: box values must be finite numbers, got {bbox}")
    if not (-180.0 <= w < e <= 180.0):
        raise ConfigError(f"{what}: need -180 <= west < east <= 180, got west={w}, east={e}")
    if not (-90.0 <= s < n <= 90.0):
        raise ConfigError(f"{what}: need -90 <= south < north <= 90, got south={s}, north={n}")
    return (w, s, e, n)


@dataclass(frozen=True)
class Region:
    """A lon/lat region.

    Attributes:
        name: a short name (a key of :data:`REGIONS`, a file stem, or "box").
        bbox: (west, south, east, north) in degrees; the polygon's bounds if it has one.
        polygon: an optional shapely Polygon/MultiPolygon in lon/lat; None for a plain box.
    """

    name: str
    bbox: BBox
    polygon: object | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "bbox", _check_bbox(self.bbox, f"region {self.name!r}"))

    def contains(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Boolean mask, shape of the broadcast of ``lon`` and ``lat`` (degrees).

        Boxes include their edges; polygons use ``shapely.contains_xy`` (edges excluded).
        """
        lon = np.asarray(lon, dtype=np.float64)
        lat = np.asarray(lat, dtype=np.float64)
        if self.polygon is not None:
            import shapely

            lon, lat = np.broadcast_arrays(lon, lat)
            return np.asarray(shapely.contains_xy(self.polygon, lon, lat), dtype=bool)
        w, s, e, n = self.bbox
        return (lon >= w) & (lon <= e) & (lat >= s) & (lat <= n)


def _parse_box_string(spec: str) -> Region | None:
    parts = [p.strip() for p in spec.split(",")]
    if len(parts) != 4:
        return None
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        return None
    return Region("box", values)  # type: ignore[arg-type]


#: feature properties that name a region, in order of preference (GeoJSON has no standard
#: one; these are the common ones of hand-made files, Natural Earth and GADM)
_NAME_KEYS = ("name", "NAME", "Name", "name_en", "NAME_EN", "ADMIN", "admin", "NAME_1", "NAME_0")


def _feature_name(feature: dict) -> str | None:
    props = feature.get("properties") or {}
    for key in _NAME_KEYS:
        if props.get(key):
            return str(props[key])
    return None


def _load_geojson(path: Path) -> Region:
    import shapely
    from shapely.geometry import shape

    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read the region file as JSON ({exc})", path) from exc
    if not isinstance(doc, dict) or "type" not in doc:
        raise ConfigError("the region file is not a GeoJSON object", path)
    if doc["type"] == "FeatureCollection":
        feats = [f for f in doc.get("features", []) if isinstance(f, dict)]
        geoms = [f.get("geometry") for f in feats]
        names = {n for n in map(_feature_name, feats) if n}
        name = names.pop() if len(names) == 1 else str(doc.get("name") or path.stem)
    elif doc["type"] == "Feature":
        geoms = [doc.get("geometry")]
        name = _feature_name(doc) or path.stem
    else:
        geoms, name = [doc], path.stem
    polys = []
    for g in geoms:
        try:
            geom = shape(g) if g else None
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            raise ConfigError(f"the region file holds an invalid geometry ({exc})", path) from exc
        if geom is None or geom.geom_type not in ("Polygon", "MultiPolygon"):
            kind = None if geom is None else geom.geom_type
            raise ConfigError(f"the region file must hold polygons, found {kind}", path)
        polys.append(geom)
    if not polys:
        raise ConfigError("the region file holds no polygon", path)
    poly = shapely.union_all(polys) if len(polys) > 1 else polys[0]
    if not poly.is_valid:
        poly = shapely.make_valid(poly)
    if poly.is_empty:
        raise ConfigError("the region polygon is empty", path)
    shapely.prepare(poly)
    return Region(name, tuple(float(v) for v in poly.bounds), poly)  # type: ignore[arg-type]


def load_region(spec: str | PathLike[str] | BBox | Region | None = None) -> Region:
    """A :class:`Region` from a name, a ``"w,s,e,n"`` string, a box tuple or a GeoJSON path.

    ``None`` gives the default region (:data:`DEFAULT_REGION`).

    Raises:
        aprior.errors.ConfigError: unknown name, malformed box, unreadable GeoJSON.
    """
    if spec is None:
        spec = DEFAULT_REGION
    if isinstance(spec, Region):
        return spec
    if isinstance(spec, tuple | list):
        return Region("box", _check_bbox(tuple(spec), "region box"))  # type: ignore[arg-type]
    text = str(spec)
    if text.lower() in REGIONS:
        return Region(text.lower(), REGIONS[text.lower()])
    box = _parse_box_string(text)
    if box is not None:
        return box
    path = Path(text)
    if path.suffix.lower() in (".geojson", ".json"):
        if not path.is_file():
            raise ConfigError("the region file does not exist", path)
        return _load_geojson(path)
    raise ConfigError(f"unknown region {text!r}: give one of {', '.join(REGIONS)}, "
                      "a 'west,south,east,north' box or a .geojson file")
