"""Differentiable losses shared by the model trainings.

DACNO2 (its Sect. 2.4) trains with MSE plus an SSIM loss computed per vertical layer on
min-max normalised horizontal slices, and compares its 2 km prediction with 8 km CAMS
after 4 x 4 average pooling. DeepCAMS trains with L1. Everything here is plain torch,
works on any device, and computes in float32 even inside a bf16 autocast region
(variances by ``E[x^2] - E[x]^2`` are not safe in bf16).

SSIM (Wang et al. 2004), per slice, with local means ``mu``, variances ``s^2`` and
covariance ``s_xy`` taken under a normalised window (population moments)::

    ssim = (2 mu_x mu_y + C1) (2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1) (s_x^2 + s_y^2 + C2))

with ``C1 = 0.01^2`` and ``C2 = 0.03^2`` for a data range of 1, evaluated where the window
lies entirely inside the slice ("valid" positions, no padding).
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import Tensor

C1 = 0.01**2
C2 = 0.03**2


def _float32(device: torch.device) -> contextlib.AbstractContextManager:
    """A context in which autocast is off, so losses run in the dtype we give them."""
    if device.type in ("cuda", "cpu"):
        return torch.autocast(device_type=device.type, enabled=False)
    return contextlib.nullcontext()


def avg_pool_xy(x: Tensor, factor: int) -> Tensor:
    """Mean over ``factor x factor`` blocks of the last two dimensions.

    Args:
        x: ``(..., H, W)``, any unit; ``H`` and ``W`` must be multiples of ``factor``.
        factor: block side in cells (4 takes DACNO2's 2 km grid to the 8 km CAMS grid).

    Returns:
        ``(..., H / factor, W / factor)``, same unit and dtype.
    """
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    if factor == 1:
        return x
    *lead, h, w = x.shape
    if h % factor or w % factor:
        raise ValueError(f"last two dims {(h, w)} are not multiples of {factor}")
    blocks = x.reshape(*lead, h // factor, factor, w // factor, factor)
    return blocks.mean(dim=(-3, -1))


def _window_1d(size: int, gaussian: bool, sigma: float, device, dtype) -> Tensor:
    if gaussian:
        r = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
        w = torch.exp(-(r**2) / (2 * sigma**2))
    else:
        w = torch.ones(size, device=device, dtype=dtype)
    return w / w.sum()


def _local_mean(x: Tensor, w1: Tensor) -> Tensor:
    """Separable window mean of ``x`` (N, 1, H, W) -> (N, 1, H-k+1, W-k+1)."""
    k = w1.numel()
    x = F.conv2d(x, w1.view(1, 1, k, 1))
    return F.conv2d(x, w1.view(1, 1, 1, k))


def ssim_map(
    x: Tensor, y: Tensor, window: int = 7, *, gaussian: bool = True, sigma: float = 1.5
) -> Tensor:
    """The local SSIM of two stacks of images already scaled to a data range of 1.

    Args:
        x, y: ``(N, H, W)``, dimensionless, typically in [0, 1].
        window: window side in cells; must not exceed ``H`` or ``W``.
        gaussian: Gaussian window of standard deviation ``sigma`` cells, else uniform.

    Returns:
        ``(N, H - window + 1, W - window + 1)``, the SSIM at every valid window position.
    """
    n, h, w = x.shape
    w1 = _window_1d(window, gaussian, sigma, x.device, x.dtype)
    stack = torch.cat([x, y, x * x, y * y, x * y]).unsqueeze(1)  # (5N, 1, H, W)
    mu_x, mu_y, e_xx, e_yy, e_xy = _local_mean(stack, w1).squeeze(1).split(n)
    var_x = e_xx - mu_x * mu_x
    var_y = e_yy - mu_y * mu_y
    cov = e_xy - mu_x * mu_y
    num = (2 * mu_x * mu_y + C1) * (2 * cov + C2)
    den = (mu_x * mu_x + mu_y * mu_y + C1) * (var_x + var_y + C2)
    return num / den


def ssim_per_layer(
    pred: Tensor,
    target: Tensor,
    mask: Tensor | None = None,
    window: int = 7,
    *,
    gaussian: bool = True,
    sigma: float = 1.5,
) -> Tensor:
    """Mean SSIM over the horizontal slices of two 3D fields (the loss is ``1 - ssim``).

    Each ``(b, z)`` slice is min-max normalised with ``lo``/``hi`` taken from the TARGET
    slice (over its valid cells) and applied to both fields, so a bias or a scale error
    in ``pred`` lowers the SSIM instead of being normalised away. A constant target slice
    (``hi == lo``) is shifted by ``lo`` but not scaled, which keeps everything finite.
    The window is shrunk to the slice size when the slice is smaller than it.

    Args:
        pred: ``(B, Z, H, W)`` prediction, any unit (the same as ``target``).
        target: ``(B, Z, H, W)`` reference.
        mask: optional ``(B, Z, H, W)`` bool, True where ``target`` is valid. An SSIM
            window position counts only when every cell under the window is valid;
            invalid cells may hold anything, NaN included.
        window: window side in cells (odd or even).
        gaussian: Gaussian window (standard deviation ``sigma`` cells), else uniform.

    Returns:
        A scalar: the mean over slices (each slice the mean of its valid SSIM-map cells),
        counting only slices with at least one valid window position; 1 when there is none.
    """
    if pred.shape != target.shape or pred.dim() != 4:
        raise ValueError(f"pred and target must both be (B, Z, H, W), got {tuple(pred.shape)} and {tuple(target.shape)}")
    b, z, h, w = pred.shape
    k = max(1, min(window, h, w))
    with _float32(pred.device):
        x = pred.float().reshape(b * z, h, w)
        y = target.float().reshape(b * z, h, w)
        if mask is None:
            lo = y.amin(dim=(1, 2), keepdim=True)
            hi = y.amax(dim=(1, 2), keepdim=True)
        else:
            m = mask.reshape(b * z, h, w).bool()
            x = torch.where(m, x, torch.zeros((), device=x.device))
            y = torch.where(m, y, torch.zeros((), device=y.device))
            big = torch.finfo(torch.float32).max
            lo = torch.where(m, y, big).amin(dim=(1, 2), keepdim=True)
            hi = torch.where(m, y, -big).amax(dim=(1, 2), keepdim=True)
            empty = ~m.any(dim=(1, 2), keepdim=True)
            lo = torch.where(empty, 0.0, lo)
            hi = torch.where(empty, 0.0, hi)
        span = hi - lo
        scale = torch.where(span > 0, span, torch.ones_like(span)).detach()
        lo = lo.detach()
        xn = (x - lo) / scale
        yn = (y - lo) / scale
        if mask is not None:
            xn = torch.where(m, xn, torch.zeros((), device=x.device))
            yn = torch.where(m, yn, torch.zeros((), device=y.device))
        smap = ssim_map(xn, yn, k, gaussian=gaussian, sigma=sigma)  # (BZ, h', w')
        if mask is None:
            return smap.mean()
        # a window position is valid when all cells under it are valid
        invalid = (~m).float().unsqueeze(1)
        valid = F.max_pool2d(invalid, kernel_size=k, stride=1).squeeze(1) == 0
        count = valid.sum(dim=(1, 2))
        per_slice = torch.where(valid, smap, torch.zeros((), device=smap.device)).sum(dim=(1, 2))
        has = count > 0
        n_slices = has.sum()
        means = per_slice / count.clamp(min=1)
        total = torch.where(has, means, torch.zeros_like(means)).sum()
        return torch.where(n_slices > 0, total / n_slices.clamp(min=1), total + 1.0)


def ssim_loss(pred: Tensor, target: Tensor, mask: Tensor | None = None, window: int = 7) -> Tensor:
    """``1 - ssim_per_layer(pred, target, mask, window)``; shapes as there, a scalar."""
    return 1.0 - ssim_per_layer(pred, target, mask, window)


def block_detail(x: Tensor, mask: Tensor, factor: int) -> tuple[Tensor, Tensor]:
    """``x`` minus its mean over ``factor x factor`` blocks of the last two dimensions (over
    the cells of ``mask``): the spatial detail finer than the block, which a field too
    smooth across the grid lacks.

    Args:
        x: ``(..., H, W)``, any unit; masked-out cells may hold NaN.
        mask: bool, the same shape.
        factor: block side in cells. Rows and columns past the last whole block are dropped.

    Returns:
        The detail ``(..., H', W')`` (``H'``, ``W'`` the largest multiples of ``factor``; the
        unit of ``x``; 0 where masked) and its mask (cells of ``mask`` in blocks that hold
        at least one of them).
    """
    h, w = x.shape[-2] - x.shape[-2] % factor, x.shape[-1] - x.shape[-1] % factor
    x, mask = x[..., :h, :w], mask[..., :h, :w].bool()
    xs = torch.where(mask, x, torch.zeros((), dtype=x.dtype, device=x.device))
    count = avg_pool_xy(mask.to(x.dtype), factor)
    mean = avg_pool_xy(xs, factor) / count.clamp(min=1e-6)
    mean = mean.repeat_interleave(factor, -2).repeat_interleave(factor, -1)
    return torch.where(mask, xs - mean, torch.zeros((), dtype=x.dtype, device=x.device)), mask


def masked_mse(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean squared error over the cells where ``mask`` is True.

    Args:
        pred, target: same shape, any, same unit ``u``; masked-out cells may hold NaN.
        mask: bool, the same shape (or broadcastable to it).

    Returns:
        A scalar in ``u^2``; 0 (still connected to ``pred``, zero gradient) when the mask is empty.
    """
    with _float32(pred.device):
        mask = torch.broadcast_to(mask.bool(), pred.shape)
        diff = torch.where(mask, pred.float() - target.float(), torch.zeros((), device=pred.device))
        return (diff * diff).sum() / mask.sum().clamp(min=1)


def l1(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean absolute error, over the cells where ``mask`` is True if given.

    Args:
        pred, target: same shape, any, same unit ``u``.
        mask: optional bool of the same (or a broadcastable) shape.

    Returns:
        A scalar in ``u``; 0 (connected to ``pred``) when the mask is empty.
    """
    with _float32(pred.device):
        diff = pred.float() - target.float()
        if mask is None:
            return diff.abs().mean()
        mask = torch.broadcast_to(mask.bool(), pred.shape)
        diff = torch.where(mask, diff, torch.zeros((), device=pred.device))
        return diff.abs().sum() / mask.sum().clamp(min=1)
