"""The HTML report of a comparison: one self-contained page (inline CSS, no script).

Figures are PNG files referenced relative to the report (``img/...``) so that the output
directory can be moved or served as is. The page holds the summary, the inputs and
settings, per-region tables of every difference, of the columns and of the comparison
with the truth, the figures, the definitions used, the command line and the versions of
the software. A red banner marks results made from synthetic inputs.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aprior._io import atomic_path

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:2em auto;
max-width:1100px;padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
h3{font-size:1.05em}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.85em}
th,td{border:1px solid #ccc;padding:.25em .55em;text-align:right}
th{background:#f2f2f2}td.l,th.l{text-align:left}
.banner{background:#b00020;color:#fff;padding:.8em 1em;font-weight:bold;border-radius:4px}
.summary{background:#f6f8fa;border-left:4px solid #0366d6;padding:.6em 1em;font-family:monospace}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:.85em;color:#555}
pre{background:#f6f8fa;padding:.6em;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
.note{font-size:.85em;color:#444}
"""


@dataclass(frozen=True)
class FigureRef:
    """A figure of the report: ``src`` relative to the report, a caption, its section."""

    src: str
    caption: str
    section: str


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _num(value: object, kind: str = "col") -> str:
    """Format a statistic: 'col' (molecules cm-2 as 1e15), 'pct', 'ratio', 'n'."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    v = float(value)  # type: ignore[arg-type]
    if kind == "n":
        return f"{int(v):,}"
    if kind == "pct":
        return f"{v:+.2f}"
    if kind == "ratio":
        return f"{v:.4f}"
    return f"{v / 1e15:.3f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    head = "".join(f'<th class="l">{_e(h)}</th>' if i < left else f"<th>{_e(h)}</th>"
                   for i, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(f'<td class="l">{c}</td>' if i < left else f"<td>{c}</td>"
                         for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figures(figs: Sequence[FigureRef], section: str) -> str:
    return "".join(f'<figure><img src="{_e(f.src)}" alt="{_e(f.caption)}">'
                   f"<figcaption>{_e(f.caption)}</figcaption></figure>"
                   for f in figs if f.section == section)


def _difference_section(stats: Mapping, d: Mapping, gridded: Mapping | None,
                        figs: Sequence[FigureRef]) -> str:
    labels = {k: v["label"] for k, v in stats["sets"].items()}
    test, ref = labels[d["test"]], labels[d["reference"]]
    rows = []
    for region, s in d["regions"].items():
        a, r = s["absolute"], s["relative"]
        rows.append([_e(region), _num(a["n"], "n"), _num(s["mean_reference"]),
                     _num(s["mean_test"]), _num(s["relative_difference_of_means"], "pct"),
                     _num(r["mean"], "pct"), _num(r["median"], "pct"), _num(r["p05"], "pct"),
                     _num(r["p95"], "pct"), _num(a["mean"]), _num(a["median"]), _num(a["p05"]),
                     _num(a["p95"])])
    out = [f"<h2>{_e(test)} against {_e(ref)}</h2>",
           f"<h3>Per pixel ({_e(test)} − {_e(ref)})</h3>",
           _table(["region", "pixels", f"mean {ref}", f"mean {test}", "Δ of means %",
                   "rel. mean %", "rel. median %", "rel. p5 %", "rel. p95 %", "abs. mean",
                   "abs. median", "abs. p5", "abs. p95"], rows),
           '<p class="note">Columns and absolute differences in 10<sup>15</sup> molecules '
           "cm<sup>-2</sup>; relative differences in % of the reference column.</p>"]
    if gridded is not None:
        grows = []
        for region, s in gridded["regions"].items():
            a, r = s["absolute"], s["relative"]
            grows.append([_e(region), _num(r["n"], "n"), _num(r["mean"], "pct"),
                          _num(r["median"], "pct"), _num(r["p05"], "pct"), _num(r["p95"], "pct"),
                          _num(a["mean"]), _num(a["median"]), _num(a["p05"]), _num(a["p95"])])
        out += ["<h3>Per grid cell of the mean maps</h3>",
                _table(["region", "cells", "rel. mean %", "rel. median %", "rel. p5 %",
                        "rel. p95 %", "abs. mean", "abs. median", "abs. p5", "abs. p95"], grows)]
    out.append(_figures(figs, d["key"]))
    return "\n".join(out)


def _columns_section(stats: Mapping, figs: Sequence[FigureRef]) -> str:
    labels = {k: v["label"] for k, v in stats["sets"].items()}
    rows = []
    for name, regions in stats["columns"].items():
        for region, s in regions.items():
            rows.append([_e(labels.get(name, name)), _e(region), _num(s["n"], "n"),
                         _num(s["mean"]), _num(s["std"]), _num(s["median"]), _num(s["p05"]),
                         _num(s["p95"])])
    return "\n".join(["<h2>Mean columns</h2>",
                      _table(["set", "region", "pixels", "mean", "std", "median", "p5", "p95"],
                             rows, left=2),
                      _figures(figs, "columns")])


def _truth_section(stats: Mapping, figs: Sequence[FigureRef]) -> str:
    truth = stats.get("truth")
    if not truth:
        return ""
    labels = {k: v["label"] for k, v in stats["sets"].items()}
    rows = []
    for name, regions in truth["sets"].items():
        for region, s in regions.items():
            d = s["difference"]
            rows.append([_e(labels[name]), _e(region), _num(s["n"], "n"), _num(s["bias"]),
                         _num(s["rmse"]), _num(s["relative_bias"], "pct"),
                         _num(s["median_ratio"], "ratio"), _num(d["p05"]), _num(d["p95"])])
    return "\n".join([
        "<h2>Against the synthetic truth</h2>",
        '<p class="note">Per pixel, column − true column (10<sup>15</sup> molecules '
        "cm<sup>-2</sup>); relative bias = 100 · mean bias / mean true column.</p>",
        _table(["set", "region", "pixels", "bias", "RMSE", "rel. bias %", "median ratio",
                "diff. p5", "diff. p95"], rows, left=2),
        _figures(figs, "truth")])


def _inputs_section(stats: Mapping) -> str:
    inp, st = stats["inputs"], stats["settings"]
    labels = stats["sets"]
    rows = [["input files", f"{inp['n_files']:,}"],
            ["pixels compared", f"{inp['pixels_selected']:,}"],
            ["qa_value threshold", f"&ge; {st['qa_min']}"],
            ["map resolution", f"{st['resolution_deg']}°"],
            ["map extent (W, S, E, N)", _e(", ".join(f"{v:g}" for v in st["extent"]))]]
    for s in labels.values():
        src = s.get("apriori_source") or ""
        rows.append([f"set “{_e(s['label'])}”", _e(s["description"] + (f": {src}" if src else ""))])
    reg_rows = [[_e(name), _e(", ".join(f"{v:g}" for v in r["bbox"])),
                 "polygon" if r["polygon"] else "box"] for name, r in stats["regions"].items()]
    files = "".join(f"<li>{_e(f)}</li>" for f in inp["files"])
    extra = ""
    for key in ("against", "truth"):
        if inp.get(key):
            extra += (f"<details><summary>{key} files ({len(inp[key])})</summary><ul>"
                      + "".join(f"<li>{_e(f)}</li>" for f in inp[key]) + "</ul></details>")
    return "\n".join(["<h2>Inputs and settings</h2>", _table(["", ""], rows),
                      f"<details><summary>input files ({inp['n_files']})</summary><ul>{files}"
                      f"</ul></details>{extra}",
                      "<h3>Regions</h3>",
                      _table(["region", "box (W, S, E, N)", "shape"], reg_rows)])


def render(stats: Mapping, figures: Sequence[FigureRef], summary: Sequence[str],
           versions: Mapping[str, str], notes: Sequence[str]) -> str:
    """The report as an HTML string."""
    labels = {k: v["label"] for k, v in stats["sets"].items()}
    main = stats["differences"][0]
    title = f"aprior compare: {labels[main['test']]} against {labels[main['reference']]}"
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{_e(title)}</h1>"]
    if stats.get("synthetic"):
        parts.append('<div class="banner">SYNTHETIC DATA: these inputs come from a synthetic '
                     "world made by 'aprior synth'. Nothing here is a measurement; never present "
                     "these numbers as real-world results.</div>")
    parts.append('<div class="summary">' + "<br>".join(_e(s) for s in summary) + "</div>")
    parts.append(_inputs_section(stats))
    gridded = {g["key"]: g for g in stats.get("gridded", [])}
    for d in stats["differences"]:
        parts.append(_difference_section(stats, d, gridded.get(d["key"]), figures))
    parts.append(_columns_section(stats, figures))
    parts.append(_truth_section(stats, figures))
    parts.append("<h2>Definitions</h2><ul class=\"note\">"
                 + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>")
    parts.append(f"<h2>Command</h2><pre>{_e(stats.get('command') or '')}</pre>")
    parts.append("<h2>Versions</h2>" + _table(["software", "version"],
                                              [[_e(k), _e(v)] for k, v in versions.items()]))
    parts.append(f'<p class="note">Made {_e(stats.get("created", ""))}. Statistics: '
                 '<a href="stats.json">stats.json</a>, <a href="stats.csv">stats.csv</a>; '
                 'maps: <a href="maps.nc">maps.nc</a>.</p>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(path: str | Path, stats: Mapping, figures: Sequence[FigureRef],
                 summary: Sequence[str], versions: Mapping[str, str],
                 notes: Sequence[str]) -> Path:
    """Write :func:`render` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(render(stats, figures, summary, versions, notes), encoding="utf-8")
    return Path(path)
