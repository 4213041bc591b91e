#!/usr/bin/env python
"""Turn an ``ncdump -h`` header (CDL) into the JSON schema packaged with aprior.

Development tool, run once by hand; the package never needs it at run time::

    python tools/cdl_to_schema.py HEADER.cdl aprior/synth/s5p/s5p_no2_header.json

The schema is a tree of groups. Each group is an object with

- ``name``: the unescaped group name (``"/"`` for the root),
- ``dims``: ``{name: size}`` in file order (``null`` size with the name listed in
  ``unlimited`` for unlimited dimensions),
- ``attrs``: ``[[name, dtype, value], ...]`` in file order,
- ``vars``: ``[{"name", "dtype", "dims", "attrs"}, ...]``,
- ``groups``: the child groups.

Types: numeric values carry their numpy dtype name (``float32``, ``uint8``, ``int64``,
...); ``"char"`` is a text attribute (NC_CHAR), ``"string"`` a variable-length string
(NC_STRING; also the dtype of string variables). A value is a scalar when the CDL gives
one item, else a list. ``_FillValue`` is kept as an ordinary attribute with its dtype.
Names escaped in CDL (``gmd\\:language``, ``subsystem\\#0``) are unescaped.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

# CDL type keyword -> schema dtype
CDL_TYPES = {
    "char": "char",
    "byte": "int8",
    "ubyte": "uint8",
    "short": "int16",
    "ushort": "uint16",
    "int": "int32",
    "uint": "uint32",
    "int64": "int64",
    "uint64": "uint64",
    "float": "float32",
    "double": "float64",
    "string": "string",
}
# numeric literal suffix -> dtype (ncdump conventions)
SUFFIX_TYPES = {
    "b": "int8",
    "ub": "uint8",
    "s": "int16",
    "us": "uint16",
    "u": "uint32",
    "ll": "int64",
    "ull": "uint64",
    "f": "float32",
    "d": "float64",
}
_NUMBER = re.compile(
    r"^(?P<num>[-+]?(?:NaN|Infinity|\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?))"
    r"(?P<suffix>ULL|ull|LL|ll|UB|ub|US|us|U|u|B|b|S|s|F|f|D|d)?$"
)
_ESCAPE = re.compile(r"\\(.)")
_STRING_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0"}


def unescape_name(name: str) -> str:
    """``gmd\\:language`` -> ``gmd:language``."""
    return _ESCAPE.sub(r"\1", name)


def _split_unescaped(text: str, sep: str) -> int:
    """Index of the first ``sep`` in ``text`` that is neither escaped nor inside quotes."""
    in_str = False
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            in_str = not in_str
        elif c == sep and not in_str:
            return i
        i += 1
    return -1


def _tokens(values: str) -> list[tuple[str, str]]:
    """Split an attribute's value list into ('str', text) and ('num', literal) items."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(values)
    while i < n:
        c = values[i]
        if c.isspace() or c == ",":
            i += 1
        elif c == '"':
            j, buf = i + 1, []
            while values[j] != '"':
                if values[j] == "\\":
                    buf.append(_STRING_ESCAPES.get(values[j + 1], values[j + 1]))
                    j += 2
                else:
                    buf.append(values[j])
                    j += 1
            out.append(("str", "".join(buf)))
            i = j + 1
        else:
            j = i
            while j < n and values[j] not in ", \t":
                j += 1
            out.append(("num", values[i:j]))
            i = j
    return out


def _number(literal: str) -> tuple[str, float | int]:
    m = _NUMBER.match(literal)
    if m is None:
        raise ValueError(f"cannot parse CDL number {literal!r}")
    num, suffix = m.group("num"), (m.group("suffix") or "").lower()
    is_float = any(ch in num for ch in ".eE") or num.lstrip("+-") in ("NaN", "Infinity")
    dtype = SUFFIX_TYPES.get(suffix) if suffix else ("float64" if is_float else "int32")
    if dtype in ("float32", "float64"):
        value: float | int = float(num.replace("Infinity", "inf"))
    else:
        value = int(num)
    return dtype, value


def parse_values(type_kw: str | None, values: str) -> tuple[str, object]:
    """(dtype, value) of one attribute's CDL value list."""
    items = _tokens(values)
    if type_kw == "string":
        texts = [t for _, t in items]
        return "string", texts[0] if len(texts) == 1 else texts
    if items and all(kind == "str" for kind, _ in items):
        return "char", "".join(t for _, t in items)
    parsed = [_number(t) for _, t in items]
    dtype = CDL_TYPES[type_kw] if type_kw else parsed[0][0]
    vals = [v for _, v in parsed]
    if dtype.startswith(("float",)):
        vals = [float(v) for v in vals]
    return dtype, vals[0] if len(vals) == 1 else vals


def _statements(text: str):
    """Yield logical CDL statements (continuation lines joined)."""
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending:
            if not line or line.startswith("//"):
                continue
            if line.endswith("{") or line.startswith("}") or line in ("dimensions:", "variables:"):
                yield line
                continue
        pending = f"{pending} {line}" if pending else line
        if _ends_statement(pending):
            yield pending
            pending = ""
    if pending:
        raise ValueError(f"unterminated CDL statement: {pending[:80]!r}")


def _ends_statement(text: str) -> bool:
    in_str = False
    i = 0
    last = ""
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            last = "x"
            continue
        if c == '"':
            in_str = not in_str
        if not c.isspace():
            last = c
        i += 1
    return not in_str and last == ";"


_VAR_DECL = re.compile(
    r"^(?P<type>[a-z0-9]+)\s+(?P<name>(?:\\.|[^\s(\\])+)\s*(?:\((?P<dims>[^)]*)\))?\s*;$"
)
_DIM_DECL = re.compile(r"^(?P<name>(?:\\.|[^\s=\\])+)\s*=\s*(?P<size>\d+|UNLIMITED)\s*;")


def new_group(name: str) -> dict:
    return {"name": name, "dims": {}, "attrs": [], "vars": [], "groups": []}


def parse_cdl(text: str) -> dict:
    """The schema tree of a CDL header."""
    root: dict | None = None
    stack: list[dict] = []
    section = None
    for stmt in _statements(text):
        if stmt.startswith("netcdf ") and stmt.endswith("{"):
            root = new_group("/")
            stack = [root]
            section = None
        elif stmt.startswith("group:") and stmt.endswith("{"):
            grp = new_group(unescape_name(stmt[len("group:") : -1].strip()))
            stack[-1]["groups"].append(grp)
            stack.append(grp)
            section = None
        elif stmt.startswith("}"):
            stack.pop()
            section = None
        elif stmt in ("dimensions:", "variables:"):
            section = stmt[:-1]
        else:
            _statement(stmt, stack[-1], section)
    if root is None or stack:
        raise ValueError("not a complete CDL header")
    return root


def _statement(stmt: str, group: dict, section: str | None) -> None:
    eq = _split_unescaped(stmt, "=")
    lhs = stmt[:eq].strip() if eq >= 0 else stmt
    colon = _split_unescaped(lhs, ":")
    if section == "dimensions" and colon < 0:
        m = _DIM_DECL.match(stmt)
        if m is None:
            raise ValueError(f"bad dimension {stmt!r}")
        name = unescape_name(m.group("name"))
        if m.group("size") == "UNLIMITED":
            group["dims"][name] = None
            group.setdefault("unlimited", []).append(name)
        else:
            group["dims"][name] = int(m.group("size"))
        return
    if colon < 0:  # variable declaration
        m = _VAR_DECL.match(stmt)
        if m is None or m.group("type") not in CDL_TYPES:
            raise ValueError(f"bad variable declaration {stmt!r}")
        dims = [unescape_name(d.strip()) for d in (m.group("dims") or "").split(",") if d.strip()]
        group["vars"].append(
            {
                "name": unescape_name(m.group("name")),
                "dtype": CDL_TYPES[m.group("type")],
                "dims": dims,
                "attrs": [],
            }
        )
        return
    type_kw = None
    head = lhs[:colon].strip()
    parts = head.split(None, 1)
    if parts and parts[0] in CDL_TYPES and (len(parts) == 2 or head == ""):
        type_kw, head = parts[0], parts[1] if len(parts) == 2 else ""
    elif parts and parts[0] in CDL_TYPES and len(parts) == 1 and lhs.startswith(parts[0] + " :"):
        type_kw, head = parts[0], ""
    attname = unescape_name(lhs[colon + 1 :].strip())
    values = stmt[eq + 1 :].strip()
    values = values[:-1].rstrip()  # drop ';'
    dtype, value = parse_values(type_kw, values)
    target = group if head == "" else _find_var(group, unescape_name(head))
    target["attrs"].append([attname, dtype, value])


def _find_var(group: dict, name: str) -> dict:
    for var in reversed(group["vars"]):
        if var["name"] == name:
            return var
    raise ValueError(f"attribute of undeclared variable {name!r}")


def _clean(obj):
    """JSON has no NaN/Infinity: encode them as strings the loader understands."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return "NaN" if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")
    if isinstance(obj, list):
        return [_clean(x) for x in obj]
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    return obj


def _line(obj) -> str:
    return json.dumps(_clean(obj), ensure_ascii=False)


def _emit_attrs(attrs: list, pad: str) -> str:
    if not attrs:
        return "[]"
    inner = ",\n".join(f"{pad}  {_line(a)}" for a in attrs)
    return f"[\n{inner}\n{pad}]"


def _emit_group(group: dict, pad: str) -> str:
    """One group as JSON text: one line per attribute, compact variable headers."""
    parts = [f'{pad} "name": {_line(group["name"])}', f'{pad} "dims": {_line(group["dims"])}']
    if "unlimited" in group:
        parts.append(f'{pad} "unlimited": {_line(group["unlimited"])}')
    parts.append(f'{pad} "attrs": {_emit_attrs(group["attrs"], pad + " ")}')
    var_texts = []
    for var in group["vars"]:
        head = f'"name": {_line(var["name"])}, "dtype": {_line(var["dtype"])}, "dims": {_line(var["dims"])}'
        var_texts.append(f'{pad}  {{{head}, "attrs": {_emit_attrs(var["attrs"], pad + "  ")}}}')
    parts.append(
        f'{pad} "vars": '
        + (f"[\n{(',' + chr(10)).join(var_texts)}\n{pad} ]" if var_texts else "[]")
    )
    kids = [_emit_group(g, pad + "  ") for g in group["groups"]]
    parts.append(
        f'{pad} "groups": ' + (f"[\n{(',' + chr(10)).join(kids)}\n{pad} ]" if kids else "[]")
    )
    return f"{pad}{{\n" + ",\n".join(parts) + f"\n{pad}}}"


def dump_schema(schema: dict, source: str) -> str:
    """The schema as commit-friendly JSON text."""
    head = f'{{\n "source": {_line(source)},\n "format": "aprior-cdl-schema/1",\n "root":\n'
    return head + _emit_group(schema, " ") + "\n}\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cdl", type=Path)
    ap.add_argument("out", type=Path)
    args = ap.parse_args(argv)
    schema = parse_cdl(args.cdl.read_text(encoding="utf-8"))
    text = dump_schema(schema, args.cdl.name)
    json.loads(text)  # must stay valid JSON
    args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
