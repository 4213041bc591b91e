"""Streaming statistics with exact percentiles in bounded memory.

Pixels arrive block by block. For every quantity (a column, a difference, a ratio) and
every region, :class:`PixelStats` keeps

* exact streaming moments (count, mean, standard deviation) in float64, merged block by
  block with the pairwise update of Chan et al. (1979), so no sum of squares cancels;
* the values themselves, spilled as float32 to one file per quantity in a scratch
  directory, with one ``uint32`` region bit mask per pixel (a pixel is written once,
  whatever the number of regions it lies in).

Percentiles are then exact order statistics of the spilled float32 values, found by a
two-pass radix selection: each float32 is mapped to an unsigned 32-bit key with the same
order; pass 1 counts the keys' upper 16 bits (65,536 bins) to find the bucket holding each
wanted rank, pass 2 counts the lower 16 bits of the keys in those buckets only. Memory is
a read chunk (1 Mi values) plus 512 KiB per bucket, for any number of pixels; disk use is
4 bytes per pixel and quantity plus 4 bytes per pixel for the mask (a year of TROPOMI pixels
over the DACNO2 domain, ~12 million, with 9 quantities: about 0.5 GB). The only
approximation is the rounding of the values to float32 (relative 6e-8) before ranking.

Percentiles follow numpy's default (``method="linear"``, Hyndman and Fan type 7):
``h = (n - 1) q / 100``, ``x[floor h] + (h - floor h) (x[floor h + 1] - x[floor h])`` on
the sorted values. NaN values keep their place in the files (so that all files align with
the mask file) but are never counted.
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: Percentiles computed for every quantity (the report shows 5, 50 and 95).
PERCENTILES: tuple[float, ...] = (1.0, 5.0, 50.0, 95.0, 99.0)

#: Most regions one :class:`PixelStats` handles (bits of the mask).
MAX_REGIONS = 32

_FLUSH_VALUES = 1 << 20
_READ_VALUES = 1 << 20
_SIGN = np.uint32(0x80000000)


def float_keys(values: np.ndarray) -> np.ndarray:
    """Order-preserving uint32 keys of float32 values (no NaN): ``a < b <=> key(a) < key(b)``."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    return np.where(bits & _SIGN, ~bits, bits | _SIGN)


def key_values(keys: np.ndarray) -> np.ndarray:
    """Inverse of :func:`float_keys`: float32 values of uint32 keys."""
    keys = np.asarray(keys, dtype=np.uint32)
    bits = np.where(keys & _SIGN, keys & ~_SIGN, ~keys)
    return bits.astype(np.uint32).view(np.float32)


@dataclass
class Moments:
    """Count, mean and sum of squared deviations (M2), merged exactly (Chan et al. 1979)."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, values: np.ndarray) -> None:
        """Add ``(k,)`` finite float values."""
        k = int(values.size)
        if k == 0:
            return
        v = values.astype(np.float64, copy=False)
        mean_b = float(v.mean())
        m2_b = float(np.sum((v - mean_b) ** 2))
        n = self.n + k
        delta = mean_b - self.mean
        self.mean += delta * k / n
        self.m2 += m2_b + delta * delta * self.n * k / n
        self.n = n

    @property
    def std(self) -> float:
        """Sample standard deviation (ddof 1); NaN below two values."""
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else math.nan

    @property
    def rms(self) -> float:
        """Root mean square of the values; NaN without values."""
        return math.sqrt(self.m2 / self.n + self.mean**2) if self.n else math.nan


def _ranks(n: int, percentiles: Sequence[float]) -> list[tuple[int, int, float]]:
    """(k0, k1, fraction) of each percentile for ``n`` sorted values (numpy "linear")."""
    out = []
    for q in percentiles:
        h = (n - 1) * q / 100.0
        k0 = int(math.floor(h))
        out.append((k0, min(k0 + 1, n - 1), h - k0))
    return out


def _bucket_of(cum: np.ndarray, rank: int) -> tuple[int, int]:
    """Bucket holding the ``rank``-th (0-based) value and the rank within it."""
    b = int(np.searchsorted(cum, rank, side="right"))
    return b, rank - (int(cum[b - 1]) if b else 0)


class PixelStats:
    """Streaming statistics of named quantities over named regions.

    Args:
        quantities: names of the per-pixel quantities.
        regions: names of the regions (at most :data:`MAX_REGIONS`); a pixel belongs to
            any subset of them.
        scratch: directory for the spill files (created if missing); a private temporary
            directory when None. :meth:`close` removes it with the files.

    Use :meth:`add` for every block, then :meth:`summary` and :meth:`histogram`.
    """

    def __init__(self, quantities: Sequence[str], regions: Sequence[str],
                 scratch: str | Path | None = None) -> None:
        if len(regions) > MAX_REGIONS:
            raise ValueError(f"at most {MAX_REGIONS} regions, got {len(regions)}")
        if len(set(quantities)) != len(quantities) or len(set(regions)) != len(regions):
            raise ValueError("quantity and region names must be unique")
        self.quantities = tuple(quantities)
        self.regions = tuple(regions)
        if scratch is None:
            self._dir = Path(tempfile.mkdtemp(prefix="aprior-stats-"))
        else:
            self._dir = Path(scratch)
            self._dir.mkdir(parents=True, exist_ok=True)
        self._files = {q: self._dir / f"q{i:03d}.f32" for i, q in enumerate(self.quantities)}
        self._mask_file = self._dir / "regions.u32"
        for path in (*self._files.values(), self._mask_file):
            path.write_bytes(b"")
        self._buf: dict[str, list[np.ndarray]] = {q: [] for q in self.quantities}
        self._mask_buf: list[np.ndarray] = []
        self._n_buf = 0
        self.n_pixels = 0
        self.moments = {(q, r): Moments() for q in self.quantities for r in self.regions}

    # -- input ----------------------------------------------------------------------
    def add(self, values: Mapping[str, np.ndarray], membership: np.ndarray) -> None:
        """Add one block of pixels.

        Args:
            values: quantity -> ``(n,)`` float values; NaN where undefined. Every quantity
                of the constructor must be present.
            membership: ``(n, n_regions)`` bool; which region each pixel lies in. Pixels in
                no region are ignored.
        """
        membership = np.asarray(membership, dtype=bool)
        if membership.ndim != 2 or membership.shape[1] != len(self.regions):
            raise ValueError(f"membership must be (n, {len(self.regions)}), got {membership.shape}")
        keep = membership.any(axis=1)
        if not keep.any():
            return
        member = membership[keep]
        bits = (member.astype(np.uint32) << np.arange(len(self.regions), dtype=np.uint32)).sum(
            axis=1, dtype=np.uint32)
        self._mask_buf.append(bits)
        for q in self.quantities:
            v = np.asarray(values[q], dtype=np.float64)[keep]
            self._buf[q].append(v.astype(np.float32))
            finite = np.isfinite(v)
            for j, r in enumerate(self.regions):
                self.moments[(q, r)].add(v[finite & member[:, j]])
        self._n_buf += int(keep.sum())
        self.n_pixels += int(keep.sum())
        if self._n_buf >= _FLUSH_VALUES:
            self.flush()

    def flush(self) -> None:
        """Write the buffered values to the spill files."""
        if not self._n_buf:
            return
        with open(self._mask_file, "ab") as fh:
            np.concatenate(self._mask_buf).tofile(fh)
        for q in self.quantities:
            with open(self._files[q], "ab") as fh:
                np.concatenate(self._buf[q]).tofile(fh)
            self._buf[q] = []
        self._mask_buf = []
        self._n_buf = 0

    # -- passes over the spilled values ---------------------------------------------
    def _chunks(self, quantity: str):
        """Yield (finite values, their region masks) of the spilled values, chunk by chunk."""
        self.flush()
        with open(self._files[quantity], "rb") as fv, open(self._mask_file, "rb") as fm:
            while True:
                v = np.fromfile(fv, dtype=np.float32, count=_READ_VALUES)
                if v.size == 0:
                    return
                m = np.fromfile(fm, dtype=np.uint32, count=v.size)
                ok = np.isfinite(v)
                yield v[ok], m[ok]

    def order_statistics(self, quantity: str,
                         ranks: Mapping[int, Sequence[int]]) -> dict[tuple[int, int], float]:
        """Exact k-th smallest values (0-based ranks) of a quantity, two passes over its file.

        Args:
            ranks: region index -> ranks wanted (each below the region's count).

        Returns:
            (region index, rank) -> value.
        """
        hi = np.zeros((len(self.regions), 1 << 16), dtype=np.int64)
        for v, m in self._chunks(quantity):
            top = float_keys(v) >> 16
            for j in ranks:
                sel = ((m >> np.uint32(j)) & np.uint32(1)).astype(bool)
                if sel.any():
                    hi[j] += np.bincount(top[sel], minlength=1 << 16)
        where: dict[tuple[int, int], tuple[int, int]] = {}  # (j, rank) -> (bucket, rank in it)
        for j, ks in ranks.items():
            cum = np.cumsum(hi[j])
            for k in ks:
                where[(j, k)] = _bucket_of(cum, k)
        lo = {(j, b): np.zeros(1 << 16, dtype=np.int64) for (j, _), (b, _) in where.items()}
        for v, m in self._chunks(quantity) if lo else ():
            keys = float_keys(v)
            top = keys >> 16
            for (j, b), hist in lo.items():
                sel = (top == b) & (((m >> np.uint32(j)) & np.uint32(1)) == 1)
                if sel.any():
                    hist += np.bincount(keys[sel] & 0xFFFF, minlength=1 << 16)
        out = {}
        for (j, k), (b, within) in where.items():
            low = int(np.searchsorted(np.cumsum(lo[(j, b)]), within, side="right"))
            out[(j, k)] = float(key_values(np.uint32((b << 16) | low)))
        return out

    def percentiles(self, quantity: str,
                    percentiles: Sequence[float] = PERCENTILES) -> dict[str, list[float]]:
        """Exact percentiles of one quantity in every region (numpy's "linear" rule).

        Returns:
            region -> values in the order of ``percentiles`` (NaN for an empty region).
        """
        counts = [self.moments[(quantity, r)].n for r in self.regions]
        plans = {j: _ranks(n, percentiles) for j, n in enumerate(counts) if n > 0}
        ranks = {j: sorted({k for k0, k1, _ in plan for k in (k0, k1)})
                 for j, plan in plans.items()}
        values = self.order_statistics(quantity, ranks)
        out = {}
        for j, r in enumerate(self.regions):
            if j not in plans:
                out[r] = [math.nan] * len(percentiles)
                continue
            out[r] = [values[(j, k0)] + frac * (values[(j, k1)] - values[(j, k0)])
                      for k0, k1, frac in plans[j]]
        return out

    def histogram(self, quantity: str, edges: np.ndarray) -> dict[str, np.ndarray]:
        """Counts of one quantity in ``edges`` (``(k + 1,)``, ascending) per region.

        Returns:
            region -> ``(k,)`` int64 counts; values outside the edges are not counted.
        """
        edges = np.asarray(edges, dtype=np.float64)
        out = {r: np.zeros(edges.size - 1, dtype=np.int64) for r in self.regions}
        for v, m in self._chunks(quantity):
            for j, r in enumerate(self.regions):
                sel = ((m >> np.uint32(j)) & np.uint32(1)).astype(bool)
                if sel.any():
                    out[r] += np.histogram(v[sel].astype(np.float64), bins=edges)[0]
        return out

    def summary(self, quantity: str) -> dict[str, dict[str, float]]:
        """region -> {n, mean, std, rms, p01, p05, median, p95, p99} of one quantity."""
        pct = self.percentiles(quantity, PERCENTILES)
        out = {}
        for r in self.regions:
            mo = self.moments[(quantity, r)]
            row: dict[str, float] = {"n": mo.n, "mean": mo.mean if mo.n else math.nan,
                                     "std": mo.std, "rms": mo.rms}
            for q, val in zip(PERCENTILES, pct[r], strict=True):
                row["median" if q == 50.0 else f"p{int(q):02d}"] = val
            out[r] = row
        return out

    def close(self) -> None:
        """Remove the spill files (and the directory when it was private or is empty)."""
        self._buf = {q: [] for q in self.quantities}
        self._mask_buf = []
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> PixelStats:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
