"""Blocks of the DeepCAMS spatial network (after ABPN, Liu et al. 2019), periodic in longitude.

Projections by ``factor`` (3 for 0.75 -> 0.25 degree) use kernel ``factor + 2``, stride
``factor`` and padding 1 (kernel 5, stride 3, padding 1 for x3), which map ``n`` cells to
``factor * n`` and back exactly.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from aprior.models.deepcams.blocks import LonConv2d, LonConvTranspose2d


def up_layer(cin: int, cout: int, factor: int) -> nn.Sequential:
    """``(b, cin, h, w) -> (b, cout, factor*h, factor*w)``: periodic transposed conv + PReLU."""
    return nn.Sequential(
        LonConvTranspose2d(cin, cout, factor + 2, stride=factor, padding=1), nn.PReLU(cout)
    )


def down_layer(cin: int, cout: int, factor: int) -> nn.Sequential:
    """``(b, cin, factor*h, factor*w) -> (b, cout, h, w)``: periodic strided conv + PReLU."""
    return nn.Sequential(LonConv2d(cin, cout, factor + 2, stride=factor, padding=1), nn.PReLU(cout))


def conv3(cin: int, cout: int) -> nn.Sequential:
    """Periodic 3x3 conv + PReLU."""
    return nn.Sequential(LonConv2d(cin, cout, 3, padding=1), nn.PReLU(cout))


def fuse(cin: int, cout: int) -> nn.Sequential:
    """1x1 conv + PReLU (dense fusion of concatenated stage outputs)."""
    return nn.Sequential(nn.Conv2d(cin, cout, 1), nn.PReLU(cout))


class UpProjection(nn.Module):
    """Enhanced up-projection: LR features ``(b, nf, h, w)`` -> HR ``(b, nf, 3h, 3w)``.

    ``H0 = up(L)``; the LR residue ``E = down(H0) - L`` of projecting back is refined by
    a 3x3 conv (the "enhanced" part) and its upsampling corrects ``H0``:
    ``H = H0 + up'(conv(E))``.
    """

    def __init__(self, nf: int, factor: int) -> None:
        super().__init__()
        self.up0 = up_layer(nf, nf, factor)
        self.down = down_layer(nf, nf, factor)
        self.refine = conv3(nf, nf)
        self.up1 = up_layer(nf, nf, factor)

    def forward(self, low: Tensor) -> Tensor:  # noqa: D102
        high = self.up0(low)
        return high + self.up1(self.refine(self.down(high) - low))


class DownProjection(nn.Module):
    """Enhanced down-projection: HR features ``(b, nf, 3h, 3w)`` -> LR ``(b, nf, h, w)``.

    ``L0 = down(H)``; the HR residue ``E = up(L0) - H`` is refined and projected down:
    ``L = L0 + down'(conv(E))``.
    """

    def __init__(self, nf: int, factor: int) -> None:
        super().__init__()
        self.down0 = down_layer(nf, nf, factor)
        self.up = up_layer(nf, nf, factor)
        self.refine = conv3(nf, nf)
        self.down1 = down_layer(nf, nf, factor)

    def forward(self, high: Tensor) -> Tensor:  # noqa: D102
        low = self.down0(high)
        return low + self.down1(self.refine(self.up(low) - high))


class SpatialAttention(nn.Module):
    """Spatial attention block: cross-correlation of LR features at two stages.

    Queries come from the current stage ``x``, keys and values from an earlier stage
    ``ref``; every position attends to every position of the patch
    (``torch.nn.functional.scaled_dot_product_attention``, memory-efficient kernels, so the
    ``(hw)^2`` map is never stored). 1x1 projections only: rolling the patch in longitude
    rolls the output. The output projection starts at zero (identity block).

    Args:
        nf: feature channels; key_ch: query/key channels.
    """

    def __init__(self, nf: int, key_ch: int) -> None:
        super().__init__()
        self.query = nn.Conv2d(nf, key_ch, 1)
        self.key = nn.Conv2d(nf, key_ch, 1)
        self.value = nn.Conv2d(nf, nf, 1)
        self.out = nn.Conv2d(nf, nf, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor, ref: Tensor) -> Tensor:
        """``x, ref (b, nf, h, w) -> (b, nf, h, w)``."""
        b, c, h, w = x.shape
        q = self.query(x).flatten(2).transpose(1, 2).unsqueeze(1)  # (b, 1, hw, k)
        k = self.key(ref).flatten(2).transpose(1, 2).unsqueeze(1)
        v = self.value(ref).flatten(2).transpose(1, 2).unsqueeze(1)  # (b, 1, hw, nf)
        y = F.scaled_dot_product_attention(q, k, v)[:, 0].transpose(1, 2).reshape(b, c, h, w)
        return x + self.out(y)


class BackProjectionRefine(nn.Module):
    """Refined back projection: correct the SR image by its mismatch with the LR input.

    ``E = D(sr) - lr`` with a learned degradation ``D`` (strided conv); the correction is
    ``sr - U(E)`` with a learned up-projection ``U`` whose last layer starts at zero.

    Args:
        channels: image channels; width: hidden channels; factor: scale factor.
    """

    def __init__(self, channels: int, width: int, factor: int) -> None:
        super().__init__()
        self.degrade = nn.Sequential(
            down_layer(channels, width, factor), LonConv2d(width, channels, 3, padding=1)
        )
        self.project = nn.Sequential(
            up_layer(channels, width, factor), LonConv2d(width, channels, 3, padding=1)
        )
        nn.init.zeros_(self.project[-1].weight)
        nn.init.zeros_(self.project[-1].bias)

    def forward(self, sr: Tensor, lr: Tensor) -> Tensor:
        """``sr (b, c, 3h, 3w)``, ``lr (b, c, h, w)`` -> refined ``(b, c, 3h, 3w)``."""
        return sr - self.project(self.degrade(sr) - lr)
