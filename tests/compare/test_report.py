"""The HTML report of ``aprior compare`` renders: images exist and load, tables, command."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
from compare_files import P, S, base_granule, reprocessed_copy

from aprior.compare import CompareConfig, compare


class _Page(HTMLParser):
    """Collects what a browser would fetch and show."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []
        self.tables = 0
        self.open: list[str] = []
        self.pre: list[str] = []
        self.banner = False
        self.title = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.images.append(a["src"])
        elif tag == "a":
            self.links.append(a["href"])
        elif tag == "table":
            self.tables += 1
        elif tag == "div" and a.get("class") == "banner":
            self.banner = True
        if tag not in ("img", "meta", "br"):
            self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, f"</{tag}> closes <{self.open[-1:]}>"
        self.open.pop()

    def handle_data(self, data):
        if self.open and self.open[-1] == "pre":
            self.pre.append(data)
        if self.open and self.open[-1] == "title":
            self.title += data


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    base = base_granule(root / "base")
    rng = np.random.default_rng(1)
    original = rng.uniform(1e15, 5e15, (S, P))
    reprocessed = original * rng.uniform(1.0, 1.6, (S, P))
    qa = np.ones((S, P))
    synthetic = reprocessed_copy(base, root / "syn" / base.name, original=original,
                                 reprocessed=reprocessed, qa=qa)
    real = reprocessed_copy(base, root / "real" / base.name, original=original,
                            reprocessed=reprocessed, qa=qa, history="operational <b>file</b>")
    cmd = "aprior compare 'a b.nc' --out <out> --qa 0.75"
    out = {}
    for name, f in (("syn", synthetic), ("real", real)):
        out[name] = compare([f], root / f"out_{name}", CompareConfig(command=cmd, dpi=60))
    return out


def test_report_renders_with_all_images(reports):
    res = reports["syn"]
    page = _parse(res.report)
    assert page.open == ["html"] or page.open == []  # every element closed
    assert len(page.images) >= 3
    for src in page.images:
        img = res.report.parent / src
        assert not Path(src).is_absolute() and img.is_file(), src
        pixels = mpimg.imread(img)
        assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
        assert np.ptp(pixels[..., :3]) > 0  # not a blank image
    for href in page.links:
        assert (res.report.parent / href).is_file()
    assert page.tables >= 4
    assert "aprior compare 'a b.nc' --out <out> --qa 0.75" in "".join(page.pre)
    assert "TEST prior" in page.title and "TM5" in page.title
    text = res.report.read_text()
    for version in ("numpy", "matplotlib", "aprior"):
        assert f">{version}<" in text


def test_synthetic_banner_only_for_synthetic_inputs(reports):
    assert _parse(reports["syn"].report).banner
    assert reports["syn"].stats["synthetic"] is True
    assert not _parse(reports["real"].report).banner
    assert reports["real"].stats["synthetic"] is False
