"""Modules of the DeepCAMS temporal network: shared encoder, flow nets, refinement U-Net."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from aprior.models.deepcams.blocks import LonConv2d, ResBlock, conv_act, upsample_periodic


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
