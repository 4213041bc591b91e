"""GeoJSON regions are named after their feature, not the file."""

from __future__ import annotations

import json

import pytest

from aprior.grids.regions import load_region

POLY = {"type": "Polygon", "coordinates": [[[4, 50], [5, 50], [5, 51], [4, 51], [4, 50]]]}


@pytest.mark.parametrize(("doc", "name"), [
    ({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"NAME": "Brussels"}, "geometry": POLY}]}, "Brussels"),
    ({"type": "Feature", "properties": {"name": "Liege"}, "geometry": POLY}, "Liege"),
    ({"type": "FeatureCollection", "name": "two cities", "features": [
        {"type": "Feature", "properties": {"name": "A"}, "geometry": POLY},
        {"type": "Feature", "properties": {"name": "B"}, "geometry": POLY}]}, "two cities"),
    (POLY, "my_file"),
])
def test_region_names(tmp_path, doc, name):
    path = tmp_path / "my_file.geojson"
    path.write_text(json.dumps(doc))
    region = load_region(path)
    assert region.name == name and region.bbox == (4.0, 50.0, 5.0, 51.0)
