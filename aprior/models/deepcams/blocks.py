"""Building blocks of both DeepCAMS networks; every convolution sees longitude as periodic.

The periodic convolutions come first, then the temporal network's modules (shared encoder,
flow nets, refinement U-Net) and the spatial network's (projections, attention).

Every convolution of the DeepCAMS networks pads the last dim (longitude, W) circularly
and the second-to-last (latitude, H) with zeros, as an ordinary convolution does. A field rolled in longitude (by a multiple of the total
stride) therefore gives the rolled features: the networks see no seam at 0/360 degrees.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def pad_periodic(x: Tensor, ph: int, pw: int) -> Tensor:
    """Pad ``(b, c, h, w)`` by ``pw`` columns circularly and ``ph`` rows by replication."""
    if pw:
        x = F.pad(x, (pw, pw, 0, 0), mode="circular")
    if ph:
        x = F.pad(x, (0, 0, ph, ph), mode="replicate")
    return x


class LonConv2d(nn.Conv2d):
    """``nn.Conv2d`` with circular padding in W (longitude) and zero padding in H.

    Same arguments as ``nn.Conv2d``; ``padding`` (an int) keeps the ordinary output shape.
    """

    def __init__(self, *args, padding: int = 0, **kwargs) -> None:
        super().__init__(*args, padding=(int(padding), 0), **kwargs)
        self.lon_pad = int(padding)

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        if self.lon_pad:
            x = F.pad(x, (self.lon_pad, self.lon_pad, 0, 0), mode="circular")
        return super().forward(x)


class LonConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` whose output is periodic in W; ordinary (zero) borders in H.

    In W the input is padded circularly by ``m = ceil((k - 1 - p) / s)`` columns, the
    transposed convolution runs without W padding and the output is cropped to the width
    the ordinary layer gives with ``padding=p``, ``(w - 1) * s - 2p + k``: all contributions
    across the 0/360 seam are included.
    """

    def __init__(self, *args, padding: int = 0, **kwargs) -> None:
        super().__init__(*args, padding=(int(padding), 0), **kwargs)
        self.lon_pad = int(padding)
        k, s = self.kernel_size[1], self.stride[1]
        self.in_pad = max(0, math.ceil((k - 1 - self.lon_pad) / s))

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        w = x.shape[-1]
        k, s, p, m = self.kernel_size[1], self.stride[1], self.lon_pad, self.in_pad
        y = super().forward(F.pad(x, (m, m, 0, 0), mode="circular") if m else x)
        start = p + s * m
        return y[..., start : start + (w - 1) * s - 2 * p + k]


def upsample_periodic(x: Tensor, scale: int) -> Tensor:
    """Bilinear (cell-registered) upsampling by ``scale``, periodic in W, clamped in H.

    Args:
        x: ``(b, c, h, w)``. Returns ``(b, c, scale*h, scale*w)``.
    """
    if scale == 1:
        return x
    y = F.interpolate(pad_periodic(x, 1, 1), scale_factor=scale, mode="bilinear", align_corners=False)
    return y[..., scale : scale + scale * x.shape[-2], scale : scale + scale * x.shape[-1]]


def resize_flow(flow: Tensor, scale: int) -> Tensor:
    """Upsample a flow ``(b, 2k, h, w)`` in pixels by ``scale``; its values scale with it."""
    return upsample_periodic(flow, scale) * scale


def conv_act(cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """Periodic conv (padding keeps the size up to the stride) followed by LeakyReLU(0.1)."""
    return nn.Sequential(
        LonConv2d(cin, cout, k, stride=stride, padding=dilation * (k - 1) // 2, dilation=dilation),
        nn.LeakyReLU(0.1),
    )


class ResBlock(nn.Module):
    """Two periodic 3x3 convs with a LeakyReLU between and an identity skip."""

    def __init__(self, ch: int, dilation: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            LonConv2d(ch, ch, 3, padding=dilation, dilation=dilation),
            nn.LeakyReLU(0.1),
            LonConv2d(ch, ch, 3, padding=dilation, dilation=dilation),
        )

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        return x + self.body(x)


def time_map(t: Tensor, like: Tensor) -> Tensor:
    """A ``(b, 1, h, w)`` map holding each sample's ``t`` (``t`` is ``(b,)``)."""
    return t.to(like.dtype).view(-1, 1, 1, 1).expand(like.shape[0], 1, *like.shape[-2:])


# -- the temporal network's modules (XVFI-like) -------------------------------------------

class FeatureEncoder(nn.Module):
    """Frame ``(b, c, h, w)`` -> features ``(b, nf, h/stride, w/stride)``, shared by all scales."""

    def __init__(self, cin: int, nf: int, stride: int, blocks: int) -> None:
        super().__init__()
        layers = [conv_act(cin, nf)]
        layers += [conv_act(nf, nf, stride=2) for _ in range(int(math.log2(stride)))]
        layers += [ResBlock(nf) for _ in range(blocks)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        return self.body(x)


class FlowNet(nn.Module):
    """Flow update ``(b, cin, h, w) -> (b, 4, h, w)`` by dilated periodic convolutions.

    The output layer starts at zero, so an untrained net keeps the flows it is given.
    """

    def __init__(self, cin: int, width: int, layers: int) -> None:
        super().__init__()
        body = [conv_act(cin, width)]
        body += [conv_act(width, width, dilation=2 ** (i % 3)) for i in range(layers)]
        self.body = nn.Sequential(*body)
        self.out = LonConv2d(width, 4, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        return self.out(self.body(x))


class RefineUNet(nn.Module):
    """U-Net giving the occlusion logit and residual from frames, warped frames, flows and t.

    Args:
        cin: channels of the scale-resolution input.
        cout: output channels (1 logit + the frame's channels).
        width: channels of level 0; level ``l`` has ``width * 2**l``.
        depth: number of levels.
        feat_ch: channels of the encoder features joining at level ``log2(feat_stride)``.
        feat_stride: their downsampling relative to the input.
    """

    def __init__(self, cin: int, cout: int, width: int, depth: int, feat_ch: int, feat_stride: int) -> None:
        super().__init__()
        ch = [width * 2**level for level in range(depth)]
        self.inject_level = int(math.log2(feat_stride))
        self.down = nn.ModuleList()
        for level in range(depth):
            first = conv_act(cin, ch[0]) if level == 0 else conv_act(ch[level - 1], ch[level], stride=2)
            self.down.append(nn.Sequential(first, conv_act(ch[level], ch[level])))
        self.inject = nn.Conv2d(feat_ch, ch[self.inject_level], 1)
        self.up = nn.ModuleList(
            nn.Sequential(conv_act(ch[level + 1] + ch[level], ch[level]), conv_act(ch[level], ch[level]))
            for level in reversed(range(depth - 1))
        )
        self.out = LonConv2d(ch[0], cout, 3, padding=1)
        nn.init.zeros_(self.out.weight)  # untrained: mask 0.5, no residual
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor, feats: Tensor) -> Tensor:  # noqa: D102
        skips = []
        for level, block in enumerate(self.down):
            x = block(x)
            if level == self.inject_level:
                x = x + self.inject(feats)
            skips.append(x)
        for i, block in enumerate(self.up):
            skip = skips[-2 - i]
            x = block(torch.cat([upsample_periodic(x, 2), skip], 1))
        return self.out(x)


# -- the spatial network's modules (ABPN-like) ---------------------------------------------

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


__all__ = [
    "LonConv2d",
    "LonConvTranspose2d",
    "ResBlock",
    "conv_act",
    "pad_periodic",
    "resize_flow",
    "time_map",
    "upsample_periodic",
]
