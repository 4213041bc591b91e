"""Convolution building blocks that see longitude as periodic.

Every convolution of the DeepCAMS networks pads the last dim (longitude, W) circularly
and the second-to-last (latitude, H) with zeros, as an ordinary convolution does. A field rolled in longitude (by a multiple of the total
stride) therefore gives the rolled features: the networks see no seam at 0/360 degrees.
"""

from __future__ import annotations

import math

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
