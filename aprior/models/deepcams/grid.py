"""Global lat/lon node grids for DeepCAMS: 0.75 -> 0.25 degree registration, periodic longitude.

Both grids are *node* grids: values sit on the nodes, rows run north to south and columns
east from 0 degrees, longitude is periodic::

    coarse (241, 480): lat 90, 89.25, ..., -90   lon 0, 0.75, ..., 359.25
    fine   (721, 1440): lat 90, 89.75, ..., -90  lon 0, 0.25, ..., 359.75

    fine node (3j, 3i) == coarse node (j, i);   3 * 241 = 723 != 721, so never "resize".

A coarse node's *cell* is the set of fine nodes nearest to it: fine rows ``3j-1 .. 3j+1``
and columns ``3i-1 .. 3i+1`` (columns modulo 1440). These cells partition the fine grid;
the pole nodes' cells are caps of two fine rows (rows 0, 1 and 719, 720). A fine node's
own cell spans +-0.125 degree around it (clipped at the poles) and carries the area weight
``sin(lat_top) - sin(lat_bottom)``, the exact cos-lat weight, non-zero at the poles.

Every function accepts any node grid with full periodic longitude (not only the global
one) and any leading dims: arrays are ``(..., h, w)``. Where the latitudes matter
(area weights) they default to a pole-to-pole node grid ``linspace(90, -90, h)``; pass
``lat`` for a latitude band. Latitude padding (for interpolation near the grid's edges)
is ``"pole"`` (across the pole: row ``-k`` is row ``k`` shifted by 180 degrees of
longitude, the physical neighbour), ``"reflect"`` (mirror about the edge row),
``"replicate"``, or ``"auto"``: ``"pole"`` when the grid spans pole to pole with equal
lat/lon spacing (``2 * (h - 1) == w``), else ``"reflect"``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

COARSE_SHAPE = (241, 480)  # 0.75 deg, lat 90..-90 nodes (poles included), lon 0..359.25
FINE_SHAPE = (721, 1440)  # 0.25 deg, lat 90..-90 nodes, lon 0..359.75 (fine 3k = coarse k)

#: Keys' cubic convolution parameter; -0.5 is the third-order accurate choice (MATLAB imresize)
CUBIC_A = -0.5

LAT_PADS = ("auto", "pole", "reflect", "replicate")


def fine_shape(coarse_shape: Sequence[int], factor: int = 3) -> tuple[int, int]:
    """Fine node-grid shape ``(factor*(h-1)+1, factor*w)`` of a coarse ``(h, w)`` node grid."""
    h, w = coarse_shape[-2:]
    return factor * (h - 1) + 1, factor * w


def node_lats(h: int) -> np.ndarray:
    """Latitudes (degrees north, descending) of a pole-to-pole node grid of ``h`` rows."""
    return np.linspace(90.0, -90.0, h)


def resolve_lat_pad(h: int, w: int, lat_pad: str = "auto") -> str:
    """The latitude padding mode to use for an ``(h, w)`` node grid (see module docstring)."""
    if lat_pad not in LAT_PADS:
        raise ValueError(f"lat_pad must be one of {LAT_PADS}, got {lat_pad!r}")
    if lat_pad == "auto":
        return "pole" if w % 2 == 0 and 2 * (h - 1) == w else "reflect"
    return lat_pad


def pad_lon(x: Tensor, pad: int) -> Tensor:
    """Circular padding of the last dim (longitude) by ``pad`` columns on each side.

    Args:
        x: ``(..., w)``; ``pad`` may exceed ``w`` (the field repeats).

    Returns:
        ``(..., w + 2 * pad)``.
    """
    if pad == 0:
        return x
    w = x.shape[-1]
    idx = torch.arange(-pad, w + pad, device=x.device) % w
    return x.index_select(-1, idx)


def pad_lat(x: Tensor, pad: int, mode: str = "reflect") -> Tensor:
    """Pad the second-to-last dim (latitude) by ``pad`` rows on each side.

    Args:
        x: ``(..., h, w)``.
        mode: ``"pole"`` (row ``-k`` = row ``k`` rolled by ``w/2``; needs even ``w``),
            ``"reflect"`` (row ``-k`` = row ``k``), ``"replicate"`` (row ``-k`` = row 0).

    Returns:
        ``(..., h + 2 * pad, w)``.
    """
    if pad == 0:
        return x
    h, w = x.shape[-2:]
    mode = resolve_lat_pad(h, w, mode)
    if mode == "replicate":
        idx = torch.arange(-pad, h + pad, device=x.device).clamp(0, h - 1)
        return x.index_select(-2, idx)
    if pad >= h:
        raise ValueError(f"cannot {mode}-pad {pad} rows onto a grid of {h} rows")
    top = torch.arange(pad, 0, -1, device=x.device)
    bottom = torch.arange(h - 2, h - 2 - pad, -1, device=x.device)
    top_rows, bottom_rows = x.index_select(-2, top), x.index_select(-2, bottom)
    if mode == "pole":
        if w % 2:
            raise ValueError(f"pole padding needs an even number of longitudes, got {w}")
        top_rows = top_rows.roll(w // 2, dims=-1)
        bottom_rows = bottom_rows.roll(w // 2, dims=-1)
    return torch.cat([top_rows, x, bottom_rows], dim=-2)


def _cubic_weights(p: float) -> tuple[float, float, float, float]:
    """Keys cubic-convolution weights of samples at offsets -1, 0, 1, 2 for position ``p``."""
    a = CUBIC_A

    def near(s: float) -> float:  # |s| <= 1
        return ((a + 2) * s - (a + 3)) * s * s + 1

    def far(s: float) -> float:  # 1 < |s| < 2
        return ((a * s - 5 * a) * s + 8 * a) * s - 4 * a

    return far(1 + p), near(p), near(1 - p), far(2 - p)


def _cubic_nodes_1d(x: Tensor, factor: int, dim: int) -> Tensor:
    """Node-registered cubic upsampling along ``dim`` of an array padded by 2 on both sides.

    ``x`` has ``n + 4`` entries along ``dim`` (original nodes at 2 .. n+1); returns
    ``n * factor`` entries: entry ``factor*j + r`` is the cubic interpolant at ``j + r/factor``.
    Exact copies at the nodes (weights 0, 1, 0, 0).
    """
    n = x.shape[dim] - 4
    taps = [x.narrow(dim, k, n) for k in range(1, 5)]  # offsets -1, 0, 1, 2
    phases = []
    for r in range(factor):
        w = _cubic_weights(r / factor)
        phases.append(taps[1] if r == 0 else sum(wk * t for wk, t in zip(w, taps, strict=True)))
    out = torch.stack(phases, dim=dim)  # dim < 0: interleaves as factor*j + r
    shape = list(x.shape)
    shape[dim] = n * factor
    return out.reshape(shape)


def _check_factor(factor: int) -> None:
    if factor < 1 or factor % 2 == 0:
        raise ValueError(f"factor must be a positive odd integer, got {factor}")


def upsample_bicubic(coarse: Tensor, factor: int = 3, lat_pad: str = "auto") -> Tensor:
    """Node-registered bicubic upsampling, periodic in longitude; exact at the coarse nodes.

    Args:
        coarse: ``(..., h, w)`` on a node grid with full periodic longitude.
        factor: refinement factor (3 for 0.75 -> 0.25 degree).
        lat_pad: latitude edge handling (see module docstring).

    Returns:
        ``(..., factor*(h-1)+1, factor*w)``; fine node ``(factor*j, factor*i)`` equals
        coarse node ``(j, i)`` bit for bit.
    """
    h, w = coarse.shape[-2:]
    mode = resolve_lat_pad(h, w, lat_pad)
    if mode != "replicate" and h < 3:
        mode = "replicate"
    x = pad_lat(coarse, 2, mode)
    x = _cubic_nodes_1d(x, factor, -2)[..., : factor * (h - 1) + 1, :]
    return _cubic_nodes_1d(pad_lon(x, 2), factor, -1)


def upsample_bicubic_cells(x: Tensor, factor: int = 3) -> Tensor:
    """Cell-registered bicubic upsampling of a patch (circular lon, replicated lat edges).

    Output pixel ``factor*i + q`` sits at input coordinate ``i + (q - (factor-1)/2)/factor``:
    the centre pixel of each ``factor x factor`` block is the input pixel itself. Uses the
    same cubic weights as :func:`upsample_bicubic`, so on a padded tile both agree exactly.

    Args:
        x: ``(..., h, w)`` patch. Returns ``(..., factor*h, factor*w)``.
    """
    _check_factor(factor)
    q = (factor - 1) // 2
    h, w = x.shape[-2:]
    y = pad_lat(x, 3, "replicate")
    y = _cubic_nodes_1d(y, factor, -2)[..., factor - q : factor - q + factor * h, :]
    y = _cubic_nodes_1d(pad_lon(y, 3), factor, -1)
    return y[..., factor - q : factor - q + factor * w]


def _fine_row_weights(h: int, factor: int, lat: Sequence[float] | np.ndarray | None) -> np.ndarray:
    """Area weights (float64, ``(factor*(h-1)+1,)``) of the fine rows' cells."""
    lat_c = node_lats(h) if lat is None else np.asarray(lat, dtype=np.float64)
    if lat_c.shape != (h,):
        raise ValueError(f"lat must hold the {h} coarse node latitudes, got shape {lat_c.shape}")
    k = np.arange(factor * (h - 1) + 1)
    lat_f = np.interp(k / factor, np.arange(h), lat_c)
    half = abs(lat_c[1] - lat_c[0]) / factor / 2 if h > 1 else 0.125
    top = np.radians(np.clip(lat_f + half, -90.0, 90.0))
    bottom = np.radians(np.clip(lat_f - half, -90.0, 90.0))
    return np.sin(top) - np.sin(bottom)


def _check_fine(fine: Tensor, factor: int) -> tuple[int, int]:
    _check_factor(factor)
    hf, wf = fine.shape[-2:]
    if (hf - 1) % factor or wf % factor:
        raise ValueError(
            f"fine grid {hf} x {wf} is not a node grid refined by {factor}: "
            f"need rows = {factor}*(h-1)+1 and columns = {factor}*w"
        )
    return (hf - 1) // factor + 1, wf // factor


def coarsen(
    fine: Tensor, factor: int = 3, lat: Sequence[float] | np.ndarray | None = None
) -> Tensor:
    """Area mean of each coarse node's cell (cos-lat weighted, periodic lon, pole caps).

    Args:
        fine: ``(..., factor*(h-1)+1, factor*w)`` on the fine node grid.
        factor: refinement factor (odd).
        lat: the ``h`` coarse node latitudes in degrees; None = pole to pole.

    Returns:
        ``(..., h, w)``: for coarse node ``(j, i)`` the mean over fine rows
        ``3j-1 .. 3j+1`` (those that exist) and columns ``3i-1 .. 3i+1`` (mod ``3w``),
        each fine cell weighted by its area.
    """
    h, w = _check_fine(fine, factor)
    q = (factor - 1) // 2
    wrow = torch.as_tensor(_fine_row_weights(h, factor, lat), dtype=fine.dtype, device=fine.device)
    x = torch.roll(fine, q, dims=-1) * wrow[:, None]  # column factor*i - q first in each group
    x = F.pad(x, (0, 0, q, q))  # rows -q .. factor*h - q - 1; the pads hold no weight
    x = x.reshape(*x.shape[:-2], h, factor, w, factor).sum(dim=(-3, -1))
    norm = F.pad(wrow, (q, q)).reshape(h, factor).sum(-1)[:, None] * factor
    return x / norm


def _inject(coarse: Tensor, factor: int) -> Tensor:
    """Piecewise-constant fine field: every fine node gets its coarse cell's value."""
    h, w = coarse.shape[-2:]
    q = (factor - 1) // 2
    rows = (torch.arange(factor * (h - 1) + 1, device=coarse.device) + q) // factor
    cols = ((torch.arange(factor * w, device=coarse.device) + q) // factor) % w
    return coarse.index_select(-2, rows).index_select(-1, cols)


def upsample_area(
    coarse: Tensor,
    factor: int = 3,
    lat: Sequence[float] | np.ndarray | None = None,
    lat_pad: str = "auto",
    iterations: int = 6,
) -> Tensor:
    """Area-conserving upsampling: each coarse cell's area mean of the result is its value.

    Construction: start from the smooth node-registered bicubic field ``y = B(x)``, then
    ``iterations`` smooth corrections ``y += B(x - C(y))`` (``C`` = :func:`coarsen`; the
    iteration converges because ``C B`` has eigenvalues in ``(0, 1]``), and one last
    piecewise-constant correction ``y += P(x - C(y))`` that makes ``C(y) == x`` exact to
    rounding (``P`` gives every fine node its cell's value; ``C P`` is the identity). The
    last step is small after the smooth ones, so the field stays smooth. Like any cubic
    interpolant it may overshoot near sharp gradients.

    Args:
        coarse: ``(..., h, w)`` coarse node values (any unit).
        lat: coarse node latitudes (degrees); None = pole to pole.

    Returns:
        ``(..., factor*(h-1)+1, factor*w)`` with ``coarsen(result) == coarse``.
    """
    _check_factor(factor)
    y = upsample_bicubic(coarse, factor, lat_pad)
    for _ in range(iterations):
        y = y + upsample_bicubic(coarse - coarsen(y, factor, lat), factor, lat_pad)
    return y + _inject(coarse - coarsen(y, factor, lat), factor)


def warp(x: Tensor, flow: Tensor, periodic_lon: bool = True) -> Tensor:
    """Backward warping: ``out[..., i, j] = x[..., i + flow_y, j + flow_x]`` (bilinear).

    Longitude wraps (the sample column is taken modulo ``w``); latitude clamps at the
    border rows.

    Args:
        x: ``(b, c, h, w)`` field.
        flow: ``(b, 2, h, w)`` displacement in pixels; channel 0 along columns (lon,
            eastward), channel 1 along rows (southward on a north-to-south grid).

    Returns:
        ``(b, c, h, w)``, in float32 at least (the computation's precision).
    """
    b, _, h, w = x.shape
    if flow.shape != (b, 2, h, w):
        raise ValueError(f"flow must be {(b, 2, h, w)}, got {tuple(flow.shape)}")
    # work in at least float32: bfloat16 (mixed precision) cannot even count to 480
    work = torch.promote_types(torch.promote_types(x.dtype, flow.dtype), torch.float32)
    x, flow = x.to(work), flow.to(work)
    jj = torch.arange(w, device=x.device, dtype=flow.dtype).view(1, 1, w)
    ii = torch.arange(h, device=x.device, dtype=flow.dtype).view(1, h, 1)
    sx = jj + flow[:, 0]
    sy = ii + flow[:, 1]
    if periodic_lon:
        sx = torch.remainder(sx, w)
        src = torch.cat([x, x[..., :1]], dim=-1)  # column w == column 0
        gx = sx * (2.0 / w) - 1.0
    else:
        src = x
        gx = sx * (2.0 / max(w - 1, 1)) - 1.0
    gy = sy * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack([gx, gy], dim=-1)
    return F.grid_sample(src, grid, mode="bilinear", padding_mode="border", align_corners=True)


def cell_patch_index(row0: int, col0: int, h: int, w: int, wf: int, factor: int = 3):
    """Fine node indices under a cell-registered coarse patch (for training pairs).

    The coarse patch of nodes ``row0 .. row0+h-1`` x ``col0 .. col0+w-1`` covers the fine
    nodes ``factor*row0 - q .. factor*(row0+h) - q - 1`` (``q = (factor-1)//2``) and the
    same for columns, modulo ``wf`` (the fine grid's width). Keep ``row0 >= 1`` and
    ``row0 + h <= h_coarse - 1`` so the rows exist (pole cells are caps).

    Returns:
        ``(rows, cols)`` int64 numpy arrays of lengths ``factor*h`` and ``factor*w``.
    """
    _check_factor(factor)
    q = (factor - 1) // 2
    rows = np.arange(factor * row0 - q, factor * (row0 + h) - q)
    cols = np.arange(factor * col0 - q, factor * (col0 + w) - q) % wf
    return rows, cols


__all__ = [
    "COARSE_SHAPE",
    "CUBIC_A",
    "FINE_SHAPE",
    "cell_patch_index",
    "coarsen",
    "fine_shape",
    "node_lats",
    "pad_lat",
    "pad_lon",
    "resolve_lat_pad",
    "upsample_area",
    "upsample_bicubic",
    "upsample_bicubic_cells",
    "warp",
]
