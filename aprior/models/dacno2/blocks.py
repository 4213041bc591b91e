"""DACNO2 building blocks: inception modules (2D and 3D) and ConvLSTM layers (2D and 3D).

Inception (paper Sect. 2.3.2, after Szegedy et al.): parallel convolution paths with different
kernels plus a max-pooling path; every path has its own batch norm, SiLU and dropout, and the
outputs are concatenated along channels. The pooling path is a 1x1 (1x1x1) projection followed
by a stride-1 3x3 (3x3x3) max pool (projecting first is cheaper than pooling every input
channel), so that all paths keep the input grid.

ConvLSTM (Shi et al. 2015, without peephole connections): the gates are convolutions of the
input and the previous hidden state. The input part of the gates is computed for all time
steps at once; the cell state is kept in at least float32 under autocast.

Tensors: 2D features are ``(B, C, H, W)``, 3D features ``(B, C, Z, H, W)``, sequences carry a
time axis after the batch, ``(B, T, C, ...)``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

Kernel = tuple[int, ...]
Path = tuple[Kernel, ...]  # one or more convolutions in a row (a factorised kernel)

#: ConvLSTM-2D branch: 1x1, 3x3, 5x5 (+ max pool)
MET_PATHS_2D: tuple[Path, ...] = (((1, 1),), ((3, 3),), ((5, 5),))
#: emission and geography CNNs: 1x1, 3x3, 5x5, 7x7 factorised as 1x7 then 7x1 (+ max pool)
CNN_PATHS_2D: tuple[Path, ...] = (((1, 1),), ((3, 3),), ((5, 5),), ((1, 7), (7, 1)))
#: ConvLSTM-3D branch: 1x1x1, 3x3x3, 3x5x5 over (Z, H, W) (+ max pool); the vertical extent is
#: capped at 3 since there are only a few pressure levels
MET_PATHS_3D: tuple[Path, ...] = (((1, 1, 1),), ((3, 3, 3),), ((3, 5, 5),))
#: fusion and decoder: 1x1x1, 1x3x3 (horizontal), 3x1x1 (vertical) (+ max pool)
FUSION_PATHS_3D: tuple[Path, ...] = (((1, 1, 1),), ((1, 3, 3),), ((3, 1, 1),))

#: receives ``(what, tensor)`` along the forward pass (shape tracing for summaries)
Note = Callable[[str, Tensor], None]


def ignore(what: str, tensor: Tensor) -> None:
    """The default :data:`Note`: records nothing."""


def prefixed(note: Note, prefix: str) -> Note:
    """``note`` with ``prefix`` put before each name."""
    if note is ignore:
        return ignore
    return lambda what, tensor: note(f"{prefix} {what}", tensor)


class VerticalConv(nn.Conv2d):
    """A 3D convolution with a ``(k, 1, 1)`` kernel, run as a 2D one over ``(Z, H * W)``.

    The same operation as ``nn.Conv3d`` with that kernel (weights ``(out, in, k, 1)``), several
    times faster on CPU.
    """

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, Z, H, W)`` -> ``(B, C_out, Z, H, W)``."""
        return super().forward(x.flatten(3)).unflatten(3, x.shape[3:])


class Conv3d(nn.Conv3d):
    """``nn.Conv3d`` that computes in channels-last layout on CPU (same result, faster there)."""

    def forward(self, x: Tensor) -> Tensor:
        if x.device.type != "cpu":
            return super().forward(x)
        fmt = torch.channels_last_3d
        return nn.functional.conv3d(x.contiguous(memory_format=fmt), self.weight.contiguous(memory_format=fmt),
                                    self.bias, self.stride, self.padding, self.dilation, self.groups)


class MaxPool3x3(nn.Module):
    """Max pool with a 3-wide window along every spatial axis, stride 1, 'same' size.

    The same result as ``nn.MaxPool2d(3, 1, 1)`` / ``nn.MaxPool3d(3, 1, 1)`` (a max is
    separable), computed as 2D pools: over ``(H, W)`` then, in 3D, along ``Z``; about a
    third faster than ``max_pool3d`` on CPU, forward and backward.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, [Z,] H, W)`` -> the same shape."""
        if self.dim == 2:
            return nn.functional.max_pool2d(x, 3, 1, 1)
        y = nn.functional.max_pool2d(x.flatten(1, 2), 3, 1, 1).unflatten(1, x.shape[1:3])
        return nn.functional.max_pool2d(y.flatten(3), (3, 1), 1, (1, 0)).unflatten(3, x.shape[3:])


def conv(dim: int, cin: int, cout: int, kernel: int | Kernel, bias: bool = True) -> nn.Module:
    """A 'same'-padded 2D or 3D convolution (odd kernels)."""
    kernel = (kernel,) * dim if isinstance(kernel, int) else tuple(kernel)
    padding = tuple(k // 2 for k in kernel)
    if dim == 2:
        return nn.Conv2d(cin, cout, kernel, padding=padding, bias=bias)
    if kernel[1:] == (1, 1):
        return VerticalConv(cin, cout, (kernel[0], 1), padding=(padding[0], 0), bias=bias)
    return Conv3d(cin, cout, kernel, padding=padding, bias=bias)


def norm(dim: int, channels: int) -> nn.Module:
    """Batch norm for 2D or 3D features."""
    return nn.BatchNorm2d(channels) if dim == 2 else nn.BatchNorm3d(channels)


def conv_bn_act(dim: int, cin: int, cout: int, kernel: int | Kernel) -> nn.Sequential:
    """Convolution, batch norm, SiLU."""
    return nn.Sequential(conv(dim, cin, cout, kernel, bias=False), norm(dim, cout), nn.SiLU())


class Inception(nn.Module):
    """Parallel convolution paths and a max-pool path, concatenated along channels.

    Args:
        dim: 2 for ``(B, C, H, W)`` inputs, 3 for ``(B, C, Z, H, W)``.
        in_channels: input channels.
        width: output channels of each path; the output has ``width * (len(paths) + 1)``.
        paths: kernels of the convolution paths (each path one or more convolutions).
        dropout: dropout probability at the end of each path.
    """

    def __init__(self, dim: int, in_channels: int, width: int, paths: Sequence[Path],
                 dropout: float = 0.0) -> None:
        super().__init__()
        branches = []
        for path in paths:
            layers: list[nn.Module] = []
            cin = in_channels
            for kernel in path:
                layers.append(conv(dim, cin, width, kernel, bias=False))
                cin = width
            branches.append(nn.Sequential(*layers, norm(dim, width), nn.SiLU(), nn.Dropout(dropout)))
        pool = MaxPool3x3(dim)
        branches.append(nn.Sequential(conv(dim, in_channels, width, 1, bias=False), pool,
                                      norm(dim, width), nn.SiLU(), nn.Dropout(dropout)))
        self.branches = nn.ModuleList(branches)
        self.out_channels = width * len(branches)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, *S)`` -> ``(B, out_channels, *S)``."""
        return torch.cat([branch(x) for branch in self.branches], dim=1)


class ConvLSTM(nn.Module):
    """One ConvLSTM layer run over a whole sequence.

    Args:
        dim: 2 (gates are Conv2d over ``(H, W)``) or 3 (Conv3d over ``(Z, H, W)``).
        in_channels: input channels.
        hidden: hidden (and cell) channels.
        kernel: gate convolution kernel (odd), the same along every axis.
    """

    def __init__(self, dim: int, in_channels: int, hidden: int, kernel: int = 3) -> None:
        super().__init__()
        self.hidden = hidden
        self.x2g = conv(dim, in_channels, 4 * hidden, kernel, bias=True)
        self.h2g = conv(dim, hidden, 4 * hidden, kernel, bias=False)
        with torch.no_grad():  # gate order i, f, o, g: open the forget gate at the start
            self.x2g.bias.zero_()
            self.x2g.bias[hidden:2 * hidden].fill_(1.0)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, T, C_in, *S)`` -> hidden states ``(B, T, hidden, *S)``."""
        b, t = x.shape[:2]
        gates_x = self.x2g(x.flatten(0, 1)).unflatten(0, (b, t))
        cell_dtype = torch.promote_types(gates_x.dtype, torch.float32)
        c = torch.zeros((b, self.hidden, *x.shape[3:]), dtype=cell_dtype, device=x.device)
        h: Tensor | None = None
        states = []
        for gx in gates_x.unbind(1):  # unbind, not indexing: one gradient buffer, not T
            g = gx if h is None else gx + self.h2g(h)
            i, f, o, cand = g.chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(cand)
            h = torch.sigmoid(o) * torch.tanh(c)
            states.append(h)
        return torch.stack(states, dim=1)


class MetStage(nn.Module):
    """One stage of a meteorology branch: a ConvLSTM, then an inception block per time step.

    The inception block is applied only to the steps that are used later: every other step
    (keeping the last) for the next stage, or only the last step at the final stage.
    """

    def __init__(self, dim: int, in_channels: int, hidden: int, width: int, kernel: int,
                 dropout: float) -> None:
        super().__init__()
        self.lstm = ConvLSTM(dim, in_channels, hidden, kernel)
        paths = MET_PATHS_2D if dim == 2 else MET_PATHS_3D
        self.inception = Inception(dim, hidden, width, paths, dropout)
        self.out_channels = self.inception.out_channels

    def forward(self, x: Tensor, final: bool = False) -> Tensor:
        """``(B, T, C_in, *S)`` -> ``(B, ceil(T/2), out_channels, *S)`` (``(B, 1, ...)`` if final)."""
        h = self.lstm(x)
        h = h[:, -1:] if final else halve_sequence(h)
        return self.inception(h.flatten(0, 1)).unflatten(0, h.shape[:2])


def halve_sequence(x: Tensor) -> Tensor:
    """Every other time step of ``(B, T, ...)``, keeping the last: T -> ceil(T / 2)."""
    return x[:, (x.shape[1] - 1) % 2::2]


def upsample_xy(x: Tensor) -> Tensor:
    """Bilinear x2 along the last two axes (H, W) of ``(B, ..., H, W)``; other axes are kept."""
    y = x.flatten(1, -3) if x.dim() > 4 else x
    y = nn.functional.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
    return y.unflatten(1, x.shape[1:-2]) if x.dim() > 4 else y


@contextlib.contextmanager
def frozen_batch_norm_stats(module: nn.Module) -> Iterator[None]:
    """Batch norms of ``module`` normalise as usual but leave their running statistics alone.

    Used while activation checkpointing recomputes a forward pass, so that the statistics are
    updated once per training step, as without checkpointing.
    """
    saved = []
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
            saved.append((m, m.momentum, None if m.num_batches_tracked is None
                          else m.num_batches_tracked.clone()))
            m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum, tracked in saved:
            m.momentum = momentum
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)


def run_stage(module: nn.Module, *args: Any, checkpointed: bool = False) -> Tensor:
    """``module(*args)``, optionally with activation checkpointing (training only)."""
    if not (checkpointed and module.training and torch.is_grad_enabled()):
        return module(*args)
    return checkpoint(module, *args, use_reentrant=False,
                      context_fn=lambda: (contextlib.nullcontext(), frozen_batch_norm_stats(module)))


class MetEncoder(nn.Module):
    """A meteorology branch: 4 ConvLSTM+inception stages, P/8 -> P/4 -> P/2 -> P.

    Each stage halves the sequence (every other step, keeping the last); the last step is that
    scale's feature, and the sequence is upsampled x2 in (H, W) for the next stage.

    Args:
        dim: 2 for single-level fields ``(B, T, C, H, W)``, 3 for pressure-level fields
            ``(B, T, C, Zp, H, W)``.
        in_channels: input variables.
        hidden, widths: ConvLSTM hidden channels and inception path widths per scale.
    """

    def __init__(self, dim: int, in_channels: int, hidden: Sequence[int], widths: Sequence[int],
                 kernel: int, dropout: float) -> None:
        super().__init__()
        stages = []
        cin = in_channels
        for h, w in zip(hidden, widths, strict=True):
            stages.append(MetStage(dim, cin, h, w, kernel, dropout))
            cin = stages[-1].out_channels
        self.stages = nn.ModuleList(stages)
        self.out_channels = [s.out_channels for s in stages]

    def forward(self, x: Tensor, checkpointed: bool = False, note: Note = ignore) -> list[Tensor]:
        """``(B, T, C, [Zp,] s, s)`` -> per scale ``(B, C_k, [Zp,] s 2^k, s 2^k)``, coarse to fine."""
        features = []
        for k, stage in enumerate(self.stages):
            if k:
                x = upsample_xy(x.flatten(0, 1)).unflatten(0, x.shape[:2])
            note(f"stage {k} ConvLSTM input", x)
            x = run_stage(stage, x, k == len(self.stages) - 1, checkpointed=checkpointed)
            note(f"stage {k} inception output", x)
            features.append(x[:, -1])
        return features


class CNNEncoder(nn.Module):
    """The emission or geography branch: 2D inception CNN from P down to P/8.

    Args:
        in_channels: input channels.
        widths: inception path widths per scale, coarse to fine (P/8, P/4, P/2, P).
    """

    def __init__(self, in_channels: int, widths: Sequence[int], dropout: float) -> None:
        super().__init__()
        stages = []
        cin = in_channels
        for w in reversed(widths):  # built fine to coarse
            stages.append(Inception(2, cin, w, CNN_PATHS_2D, dropout))
            cin = stages[-1].out_channels
        self.stages = nn.ModuleList(stages)
        self.pool = nn.MaxPool2d(2)
        self.out_channels = [s.out_channels for s in reversed(stages)]

    def forward(self, x: Tensor, checkpointed: bool = False) -> list[Tensor]:
        """``(B, C, P, P)`` -> per scale ``(B, C_k, P/8 2^k, P/8 2^k)``, coarse to fine."""
        features = []
        for k, stage in enumerate(self.stages):
            if k:
                x = self.pool(x)
            x = run_stage(stage, x, checkpointed=checkpointed)
            features.append(x)
        return features[::-1]
