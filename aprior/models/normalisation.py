"""Z-score normalisation of model inputs with statistics of the training set.

The paper normalises every input feature except the day of week and land cover with the
mean and standard deviation of the training set. :class:`ZScoreFitter` accumulates them
in one streaming pass (Chan et al.'s pairwise update of Welford's algorithm, in float64,
NaNs ignored); :class:`ZScoreStats` holds the result, applies and inverts it, and goes to
and from a plain dict (for model checkpoints) and JSON.

Statistics are kept per name. For xarray Datasets a ``split_dim`` (e.g. ``"level"`` of the
ERA5 pressure-level data) gives one statistic per coordinate value, named
``"<var>@<value>"`` (``"z@500"``), since e.g. geopotential differs by orders of magnitude
between levels. Standard deviations are population values (ddof 0); a constant variable
gets std 1 (and a warning), so it normalises to 0 instead of dividing by zero.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np

from aprior._io import atomic_path
from aprior.errors import ConfigError

log = logging.getLogger(__name__)

FORMAT = "aprior.zscore"
VERSION = 1


def _split(data, split_dim: str | None) -> dict[str, np.ndarray]:
    """name -> array for a Mapping or an xarray Dataset (split along ``split_dim``)."""
    import xarray as xr

    if isinstance(data, xr.Dataset):
        out = {}
        for name, da in data.data_vars.items():
            if split_dim is not None and split_dim in da.dims:
                for value in da[split_dim].values:
                    out[f"{name}@{value:g}"] = da.sel({split_dim: value}).values
            else:
                out[str(name)] = da.values
        return out
    if isinstance(data, Mapping):
        return {str(k): np.asarray(v) for k, v in data.items()}
    raise TypeError(f"expected a mapping of arrays or an xarray Dataset, got {type(data).__name__}")


@dataclass(frozen=True)
class ZScoreStats:
    """Per-variable mean and standard deviation.

    Attributes:
        names: variable names, in channel order.
        mean, std: one value per name, in the variable's units; std > 0.
        count: number of values each statistic is based on.
    """

    names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    count: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.names)
        count = self.count or (0,) * n
        object.__setattr__(self, "names", tuple(str(s) for s in self.names))
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        object.__setattr__(self, "count", tuple(int(v) for v in count))
        if not (len(self.mean) == len(self.std) == len(self.count) == n):
            raise ValueError("names, mean, std and count must have the same length")
        if len(set(self.names)) != n:
            raise ValueError(f"duplicate variable names in {self.names}")
        if not all(math.isfinite(m) for m in self.mean):
            raise ValueError(f"means must be finite, got {self.mean}")
        if not all(math.isfinite(s) and s > 0 for s in self.std):
            raise ValueError(f"standard deviations must be finite and positive, got {self.std}")

    def _ms(self, name: str) -> tuple[float, float]:
        try:
            i = self.names.index(name)
        except ValueError:
            raise KeyError(f"no z-score statistics for {name!r} (have {', '.join(self.names)})") \
                from None
        return self.mean[i], self.std[i]

    def _channel_ms(self, channels: Sequence[str] | None, ndim: int,
                    axis: int) -> tuple[np.ndarray, np.ndarray]:
        names = self.names if channels is None else tuple(channels)
        ms = np.array([self._ms(n) for n in names], dtype=np.float64).T
        shape = [1] * ndim
        shape[axis] = len(names)
        return ms[0].reshape(shape), ms[1].reshape(shape)

    def _transform(self, data, name, channels, axis, split_dim, inverse: bool):
        import xarray as xr

        def one(v: np.ndarray, m, s) -> np.ndarray:
            v = np.asarray(v)
            dt = v.dtype if np.issubdtype(v.dtype, np.floating) else np.float64
            out = v * s + m if inverse else (v - m) / s
            return np.asarray(out).astype(dt, copy=False)

        if isinstance(data, xr.Dataset):
            out = data.copy()
            for var, da in data.data_vars.items():
                if split_dim is not None and split_dim in da.dims:
                    ms = np.array([self._ms(f"{var}@{c:g}") for c in da[split_dim].values]).T
                    shape = [len(ms[0]) if d == split_dim else 1 for d in da.dims]
                    out[var] = da.copy(data=one(da.values, ms[0].reshape(shape),
                                                ms[1].reshape(shape)))
                else:
                    out[var] = da.copy(data=one(da.values, *self._ms(str(var))))
            return out
        if isinstance(data, Mapping):
            return {k: one(v, *self._ms(str(k))) for k, v in data.items()}
        arr = np.asarray(data)
        if name is not None:
            return one(arr, *self._ms(name))
        if arr.shape[axis] != (len(self.names) if channels is None else len(channels)):
            raise ValueError(f"array has {arr.shape[axis]} channels on axis {axis}, "
                             f"expected {len(self.names) if channels is None else len(channels)}")
        return one(arr, *self._channel_ms(channels, arr.ndim, axis))

    def apply(self, data, *, name: str | None = None, channels: Sequence[str] | None = None,
              axis: int = 0, split_dim: str | None = None):
        """Normalise: ``(x - mean) / std``.

        ``data`` is a dict name -> array, an xarray Dataset (``split_dim`` as in
        :meth:`ZScoreFitter.update`), one array of variable ``name``, or an array whose
        ``axis`` holds the channels ``channels`` (default: all names, in order). Float
        dtypes are kept.
        """
        return self._transform(data, name, channels, axis, split_dim, inverse=False)

    def invert(self, data, *, name: str | None = None, channels: Sequence[str] | None = None,
               axis: int = 0, split_dim: str | None = None):
        """Undo :meth:`apply`: ``z * std + mean`` (same arguments)."""
        return self._transform(data, name, channels, axis, split_dim, inverse=True)

    # -- persistence ------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Plain, JSON-able dict (what a model checkpoint carries)."""
        return {"format": FORMAT, "version": VERSION,
                "variables": {n: {"mean": m, "std": s, "count": c}
                              for n, m, s, c in zip(self.names, self.mean, self.std, self.count,
                                                    strict=True)}}

    @classmethod
    def from_dict(cls, d: Mapping) -> ZScoreStats:
        """Inverse of :meth:`to_dict`. Raises ConfigError if malformed."""
        try:
            if d.get("format") != FORMAT:
                raise ValueError(f"format is {d.get('format')!r}, expected {FORMAT!r}")
            vs = d["variables"]
            return cls(tuple(vs), tuple(v["mean"] for v in vs.values()),
                       tuple(v["std"] for v in vs.values()),
                       tuple(v.get("count", 0) for v in vs.values()))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"invalid z-score statistics: {exc}") from exc

    def save(self, path: str | PathLike[str]) -> Path:
        """Write JSON atomically."""
        target = Path(path)
        with atomic_path(target, suffix=".json") as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")
        return target

    @classmethod
    def load(cls, path: str | PathLike[str]) -> ZScoreStats:
        p = Path(path)
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read z-score statistics ({exc})", p) from exc
        try:
            return cls.from_dict(d)
        except ConfigError as exc:
            raise ConfigError(exc.message, p) from exc

    @classmethod
    def fit(cls, batches: Iterable, split_dim: str | None = None) -> ZScoreStats:
        """Statistics over an iterable of dicts of arrays or Datasets (one pass)."""
        fitter = ZScoreFitter()
        for b in batches:
            fitter.update(b, split_dim=split_dim)
        return fitter.result()


class ZScoreFitter:
    """Streaming, NaN-aware mean and variance per name (float64)."""

    def __init__(self) -> None:
        self._n: dict[str, int] = {}
        self._mean: dict[str, float] = {}
        self._m2: dict[str, float] = {}

    def update(self, data, split_dim: str | None = None) -> None:
        """Add a batch: dict name -> array, or Dataset (one name per var, or per
        ``split_dim`` value as ``"<var>@<value>"``)."""
        for name, arr in _split(data, split_dim).items():
            self.update_values(name, arr)

    def update_values(self, name: str, values: np.ndarray) -> None:
        """Add the finite values of an array of any shape to the statistics of ``name``."""
        v = np.asarray(values, dtype=np.float64).ravel()
        v = v[np.isfinite(v)]
        nb = v.size
        if nb == 0:
            self._n.setdefault(name, 0)
            self._mean.setdefault(name, 0.0)
            self._m2.setdefault(name, 0.0)
            return
        mb = float(v.mean())
        m2b = float(np.sum((v - mb) ** 2))
        na, ma, m2a = self._n.get(name, 0), self._mean.get(name, 0.0), self._m2.get(name, 0.0)
        n = na + nb
        delta = mb - ma
        self._n[name] = n
        self._mean[name] = ma + delta * nb / n
        self._m2[name] = m2a + m2b + delta * delta * na * nb / n

    def mean(self, name: str) -> float:
        """The running mean of ``name`` so far (what :meth:`result` will report)."""
        return self._mean[name]

    def result(self) -> ZScoreStats:
        names, means, stds, counts = [], [], [], []
        for name, n in self._n.items():
            if n == 0:
                raise ValueError(f"no finite values were seen for {name!r}")
            std = math.sqrt(self._m2[name] / n)
            if not std > 1e-12 * max(1.0, abs(self._mean[name])):
                log.warning("%s is constant (%g) in the training set; its std is set to 1",
                            name, self._mean[name])
                std = 1.0
            names.append(name)
            means.append(self._mean[name])
            stds.append(std)
            counts.append(n)
        return ZScoreStats(tuple(names), tuple(means), tuple(stds), tuple(counts))
