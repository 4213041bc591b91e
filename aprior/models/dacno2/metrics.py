"""Agreement statistics of Table 2 and the fine-scale structure of a field.

:class:`PairStats` accumulates model/reference pairs in one streaming pass (float64 sums,
NaN pairs skipped) and gives the paper's four scores:

- RMSE ``sqrt(mean((m - o)^2))``, in the unit of the data (ug m-3);
- Pearson's ``r``;
- ``R2 = 1 - sum((m - o)^2) / sum((o - mean(o))^2)``, the coefficient of determination
  of the model as a predictor of the reference (it can be negative; it is not ``r^2``);
- bias ``mean(m - o)`` (model minus reference).

:func:`fine_scale_std` measures how much spatial detail a field has below a block size:
the standard deviation of the field minus its block mean (16 km blocks of the 2 km grid
by default). Bilinearly interpolated CAMS has almost none; a model that resolves towns and
roads has more. :func:`fine_scale_corr` says whether that detail is in the right places
(the correlation of two fields' sub-block anomalies).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

#: the four scores, in the order of the paper's Table 2
SCORES = ("rmse", "r", "r2", "bias")


@dataclass
class PairStats:
    """Streaming sums of model/reference pairs.

    Attributes:
        n: number of pairs.
        sums: running float64 sums ``m, o, m^2, o^2, m o, (m - o)^2``.
    """

    n: int = 0
    sums: np.ndarray = field(default_factory=lambda: np.zeros(6, dtype=np.float64))

    def add(self, model: np.ndarray, ref: np.ndarray) -> PairStats:
        """Add pairs.

        Args:
            model: any shape, ug m-3 (or any unit shared with ``ref``).
            ref: the same shape. Pairs where either value is NaN are skipped.

        Returns:
            self.
        """
        m = np.asarray(model, dtype=np.float64).ravel()
        o = np.asarray(ref, dtype=np.float64).ravel()
        if m.shape != o.shape:
            raise ValueError(f"model and reference differ in size: {m.size} != {o.size}")
        ok = np.isfinite(m) & np.isfinite(o)
        m, o = m[ok], o[ok]
        d = m - o
        self.n += int(m.size)
        self.sums += np.array([m.sum(), o.sum(), (m * m).sum(), (o * o).sum(), (m * o).sum(),
                               (d * d).sum()])
        return self

    def merge(self, other: PairStats) -> PairStats:
        """Add another accumulator's pairs; returns self."""
        self.n += other.n
        self.sums += other.sums
        return self

    def scores(self) -> dict[str, float]:
        """``{"n", "rmse", "r", "r2", "bias", "mean_model", "mean_ref"}``; NaN where undefined."""
        nan = float("nan")
        if self.n == 0:
            return {"n": 0, **dict.fromkeys(SCORES, nan), "mean_model": nan, "mean_ref": nan}
        n = float(self.n)
        sm, so, smm, soo, smo, sdd = self.sums
        mm, mo = sm / n, so / n
        var_m = max(smm / n - mm * mm, 0.0)
        var_o = max(soo / n - mo * mo, 0.0)
        cov = smo / n - mm * mo
        r = cov / math.sqrt(var_m * var_o) if var_m > 0 and var_o > 0 else nan
        sst = var_o * n
        return {"n": self.n, "rmse": math.sqrt(max(sdd / n, 0.0)),
                "r": float(np.clip(r, -1.0, 1.0)) if math.isfinite(r) else nan,
                "r2": 1.0 - sdd / sst if sst > 0 else nan, "bias": mm - mo,
                "mean_model": mm, "mean_ref": mo}


def block_anomaly(field2d: np.ndarray, block: int) -> np.ndarray:
    """The field minus the mean of its ``block x block`` cell block.

    Args:
        field2d: ``(..., ny, nx)``; the part of the grid beyond the last whole block is
            dropped.
        block: block side in cells (8 = 16 km on the 2 km grid).

    Returns:
        ``(..., block * (ny // block), block * (nx // block))`` float64.
    """
    a = np.asarray(field2d, dtype=np.float64)
    ny, nx = a.shape[-2:]
    by, bx = ny // block, nx // block
    if by == 0 or bx == 0:
        raise ValueError(f"a {ny} x {nx} field holds no whole {block} x {block} block")
    a = a[..., :by * block, :bx * block]
    blocks = a.reshape(*a.shape[:-2], by, block, bx, block)
    mean = blocks.mean(axis=(-3, -1), keepdims=True)
    return (blocks - mean).reshape(a.shape)


def fine_scale_std(field2d: np.ndarray, block: int = 8) -> float:
    """Standard deviation (ug m-3) of ``field2d`` minus its ``block``-cell block means:
    the spatial variability below the block size (16 km for ``block=8`` at 2 km).

    Args:
        field2d: ``(ny, nx)`` (or ``(t, ny, nx)``, pooled) ug m-3.
    """
    return float(np.sqrt(np.mean(block_anomaly(field2d, block) ** 2)))


def fine_scale_corr(field2d: np.ndarray, reference: np.ndarray, block: int = 8) -> float:
    """Correlation of the sub-block anomalies of two fields (is the fine detail where the
    reference has it?). Shapes as :func:`fine_scale_std`; NaN if either is flat."""
    a = block_anomaly(field2d, block).ravel()
    b = block_anomaly(reference, block).ravel()
    sa, sb = a.std(), b.std()
    if sa == 0 or sb == 0:
        return float("nan")
    return float(np.mean(a * b) / (sa * sb))
