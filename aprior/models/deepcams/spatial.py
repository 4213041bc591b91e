"""DeepCAMS spatial network: x3 super-resolution after ABPN (Liu et al. 2019).

:class:`SpatialNet` maps a cell-registered coarse patch ``(b, c, h, w)`` to the fine patch
``(b, c, 3h, 3w)``: shallow feature extraction (a wide 3x3 conv squeezed by a 1x1 conv),
``stages`` pairs of enhanced up- and down-projection blocks with dense (concatenated)
connections, a spatial attention block after every down-projection (each LR stage
attends to the previous one), fusion of all HR stages and a 3x3 reconstruction added to
the bicubic upsampled input (global skip), then a refined back-projection stage. The last
layers of the learned part start at zero: an untrained net is the bicubic interpolation.
Every convolution pads longitude circularly, so rolling the input by ``k`` columns rolls
the output by ``3k``.

Registration. On a patch, output pixel ``3i + q`` (``q = 0, 1, 2``) lies in coarse cell
``i``; its centre pixel ``3i + 1`` is the coarse cell's centre. A training pair takes the
fine nodes under the coarse cells (:func:`aprior.models.deepcams.grid.cell_patch_index`).
:func:`upscale_nodes` runs the net on the global node grid::

    fine node n:               -1   0   1   2   3   4   5   6   7
    coarse node j:                  0           1           2
    net output pixel k:         0   1   2   3   4   5   6   7   8      k = n + 1
    coarse cell:              |  cell 0   |  cell 1   |  cell 2   |

(the same in both directions; fine node ``3j`` is coarse node ``j``): the net's output, run
on coarse nodes ``j0 ..``, is shifted by one fine cell relative to the fine nodes, fine node
``3 j0 + n`` being output pixel ``n + 1``. :func:`upscale_nodes` pads (across the poles in
latitude, circularly in longitude), runs tiles with a halo and crops accordingly.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from aprior.errors import ConfigError
from aprior.models.deepcams.blocks import (
    BackProjectionRefine,
    DownProjection,
    LonConv2d,
    SpatialAttention,
    UpProjection,
    fuse,
)
from aprior.models.deepcams.grid import pad_lat, resolve_lat_pad, upsample_bicubic_cells
from aprior.models.summary import ModelSummary, count_parameters

log = logging.getLogger(__name__)

FACTOR = 3


@dataclass(frozen=True)
class SpatialConfig:
    """Sizes of the ABPN-style spatial network; the defaults are the paper preset.

    Attributes:
        in_channels: channels (1: PM2.5).
        features: feature channels of the projection blocks (32 in ABPN x3).
        extract_features: channels of the first 3x3 conv before the 1x1 squeeze.
        stages: up/down projection pairs.
        key_features: query/key channels of the spatial attention blocks.
        refine_features: hidden channels of the back-projection refinement.
    """

    in_channels: int = 1
    features: int = 32
    extract_features: int = 128
    stages: int = 10
    key_features: int = 16
    refine_features: int = 32

    PRESETS: ClassVar[dict[str, SpatialConfig]]

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"spatial config: {f.name} must be a positive integer, got {value!r}")

    @classmethod
    def preset(cls, name: str) -> SpatialConfig:
        """The named preset (``"paper"``, ``"small"``, ``"tiny"``); ConfigError if unknown."""
        if name not in cls.PRESETS:
            raise ConfigError(f"unknown spatial preset {name!r}; known: {', '.join(cls.PRESETS)}")
        return cls.PRESETS[name]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able field values."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SpatialConfig:
        """Build from :meth:`to_dict` output; ConfigError on unknown keys."""
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ConfigError(f"spatial config: unknown field(s) {', '.join(unknown)}")
        return cls(**values)


#: "paper": ABPN x3 with 32 features (about 1.8 M parameters); "small": CPU minutes;
#: "tiny": unit tests.
PRESETS: dict[str, SpatialConfig] = {
    "paper": SpatialConfig(),
    "small": SpatialConfig(features=16, extract_features=32, stages=3, key_features=8, refine_features=8),
    "tiny": SpatialConfig(features=8, extract_features=8, stages=2, key_features=4, refine_features=4),
}
SpatialConfig.PRESETS = PRESETS


class SpatialNet(nn.Module):
    """ABPN-style x3 super-resolution, periodic in longitude (see module docstring)."""

    def __init__(self, config: SpatialConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or SpatialConfig()
        nf, c = cfg.features, cfg.in_channels
        self.extract = nn.Sequential(
            nn.Sequential(LonConv2d(c, cfg.extract_features, 3, padding=1), nn.PReLU(cfg.extract_features)),
            fuse(cfg.extract_features, nf),
        )
        self.up_blocks = nn.ModuleList(UpProjection(nf, FACTOR) for _ in range(cfg.stages))
        self.down_blocks = nn.ModuleList(DownProjection(nf, FACTOR) for _ in range(cfg.stages))
        self.attention = nn.ModuleList(SpatialAttention(nf, cfg.key_features) for _ in range(cfg.stages))
        self.fuse_low = nn.ModuleList(fuse((s + 1) * nf, nf) for s in range(1, cfg.stages))
        self.fuse_high = nn.ModuleList(fuse((s + 1) * nf, nf) for s in range(1, cfg.stages))
        self.reconstruct = nn.Sequential(fuse(cfg.stages * nf, nf), LonConv2d(nf, c, 3, padding=1))
        nn.init.zeros_(self.reconstruct[-1].weight)
        nn.init.zeros_(self.reconstruct[-1].bias)
        self.refine = BackProjectionRefine(c, cfg.refine_features, FACTOR)

    def forward(self, x: Tensor) -> Tensor:
        """Super-resolve a patch.

        Args:
            x: ``(b, c, h, w)`` normalised coarse patch (cells).

        Returns:
            ``(b, c, 3h, 3w)`` fine patch, cell-registered (see module docstring).
        """
        if x.ndim != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(f"x must be (b, {self.config.in_channels}, h, w), got {tuple(x.shape)}")
        low = self.extract(x)
        lows, highs = [low], []
        for s in range(self.config.stages):
            inp = low if s == 0 else self.fuse_low[s - 1](torch.cat(lows, 1))
            highs.append(self.up_blocks[s](inp))
            hin = highs[-1] if s == 0 else self.fuse_high[s - 1](torch.cat(highs, 1))
            low = self.attention[s](self.down_blocks[s](hin), lows[-1])
            lows.append(low)
        sr = upsample_bicubic_cells(x, FACTOR) + self.reconstruct(torch.cat(highs, 1))
        return self.refine(sr, x)

    def zero_learned_(self) -> SpatialNet:
        """Zero the last layers of the learned part (the net becomes bicubic); returns self."""
        with torch.no_grad():
            for layer in (self.reconstruct[-1], self.refine.project[-1]):
                layer.weight.zero_()
                layer.bias.zero_()
        return self


def spatial_loss(pred: Tensor, target: Tensor) -> tuple[Tensor, dict[str, float]]:
    """DeepCAMS Eq. 8: mean absolute error; ``pred, target (b, c, 3h, 3w)``."""
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    loss = (pred - target).abs().mean()
    return loss, {"l1": float(loss.detach())}


@torch.no_grad()
def upscale_nodes(
    net: SpatialNet,
    coarse: Tensor,
    tile: int | None = 60,
    halo: int = 8,
    lat_pad: str = "auto",
) -> Tensor:
    """Super-resolve a node grid with full periodic longitude (e.g. the global 0.75 deg grid).

    The grid is padded by ``halo`` rows in latitude (``lat_pad``: across the poles for a
    pole-to-pole grid, see :mod:`aprior.models.deepcams.grid`) and circularly in longitude,
    cut into ``tile x tile`` windows of coarse nodes, each run with a ``halo`` of
    neighbours, and cropped to the fine nodes it owns (module docstring: fine node
    ``3 j0 + n`` is output pixel ``n + 1``). Memory is bounded by the tile size; with
    ``tile=None`` the whole grid is one window.

    Args:
        net: a :class:`SpatialNet` (run in eval mode, no gradients).
        coarse: ``(b, c, h, w)`` normalised coarse node values.
        tile: coarse nodes per tile side; None = one window.
        halo: coarse nodes of context around each tile (>= 2).
        lat_pad: latitude padding mode.

    Returns:
        ``(b, c, 3(h-1)+1, 3w)`` on the fine node grid. A net whose learned part is zero
        gives :func:`aprior.models.deepcams.grid.upsample_bicubic` with the same
        ``lat_pad``, exact at the coarse nodes.
    """
    if halo < 2:
        raise ValueError(f"halo must be at least 2 coarse nodes, got {halo}")
    b, c, h, w = coarse.shape
    mode = resolve_lat_pad(h, w, lat_pad)
    src = pad_lat(coarse, halo, mode if h > halo else "replicate")  # row j is src row j + halo
    th = h if tile is None else min(tile, h)
    tw = w if tile is None else min(tile, w)
    out = coarse.new_empty(b, c, FACTOR * h, FACTOR * w)
    log.debug("upscaling %d x %d nodes in %d x %d tile(s)", h, w, -(-h // th), -(-w // tw))
    was_training = net.training
    net.eval()
    try:
        for r0 in range(0, h, th):
            r1 = min(r0 + th, h)
            rows = src[..., r0 : r1 + 2 * halo, :]
            for c0 in range(0, w, tw):
                c1 = min(c0 + tw, w)
                cols = torch.arange(c0 - halo, c1 + halo, device=coarse.device) % w
                y = net(rows.index_select(-1, cols))
                k = FACTOR * halo + 1  # output pixel of fine node 3 * r0 (and 3 * c0)
                out[..., FACTOR * r0 : FACTOR * r1, FACTOR * c0 : FACTOR * c1] = y[
                    ..., k : k + FACTOR * (r1 - r0), k : k + FACTOR * (c1 - c0)
                ]
    finally:
        net.train(was_training)
    return out[..., : FACTOR * (h - 1) + 1, :]


def summary(preset: str) -> ModelSummary:
    """Parameter counts per part and tensor shapes for a ``1 x 1 x 96 x 96`` coarse input."""
    cfg = SpatialConfig.preset(preset)
    net = SpatialNet(cfg).eval()
    groups = {
        "extract": [net.extract],
        "up_projections": [net.up_blocks],
        "down_projections": [net.down_blocks],
        "attention": [net.attention],
        "dense_fusion": [net.fuse_low, net.fuse_high],
        "reconstruct": [net.reconstruct],
        "back_projection_refine": [net.refine],
    }
    parts = {k: sum(count_parameters(m) for m in mods) for k, mods in groups.items()}
    net = net.to("meta")  # shapes only: no memory, no arithmetic
    x = torch.zeros(1, cfg.in_channels, 96, 96, device="meta")
    shapes: list[tuple[str, tuple[int, ...]]] = [("input (coarse cells)", tuple(x.shape))]
    seen: dict[str, tuple[int, ...]] = {}
    watch = {"extract": net.extract, "up_projection": net.up_blocks[0],
             "down_projection": net.down_blocks[0], "attention": net.attention[0],
             "reconstruct": net.reconstruct}
    hooks = [
        m.register_forward_hook(lambda _m, _i, o, n=n: seen.__setitem__(n, tuple(o.shape)))
        for n, m in watch.items()
    ]
    with torch.no_grad():
        y = net(x)
    for hk in hooks:
        hk.remove()
    shapes += list(seen.items()) + [("output (fine cells)", tuple(y.shape))]
    return ModelSummary("deepcams-spatial", preset, count_parameters(net), parts, shapes)


__all__ = [
    "FACTOR",
    "PRESETS",
    "SpatialConfig",
    "SpatialNet",
    "spatial_loss",
    "summary",
    "upscale_nodes",
]
