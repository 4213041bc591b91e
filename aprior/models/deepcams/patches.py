"""Torch datasets of DeepCAMS training samples: seeded random crops of global frames.

Item ``i`` of a dataset is drawn from a generator seeded by ``(seed, i)``: the same index
gives the same sample in every run and every worker (exact resume, reproducible
validation), and the engine's seeded shuffling decides the order. Crops are anywhere in
longitude (wrapping through 0/360 degrees); in latitude they stay inside the grid.

Items (float32 tensors, normalised with :class:`~aprior.models.deepcams.data.Normalisation`):

* temporal: ``"g0"``, ``"g1"``, ``"target"`` ``(1, p, p)``, ``"t"`` ``()`` in (0, 1) and
  ``"sun"`` ``(6, p, p)``, the local solar time of every crop pixel at the two frames and
  the target (:func:`~aprior.models.deepcams.data.solar_channels`; node-grid column ``j``
  is at longitude ``360 j / w``), flipped and time-reversed with the frames;
* spatial: ``"coarse"`` ``(1, p, p)`` and ``"fine"`` ``(1, 3p, 3p)``, the fine nodes of
  the coarse nodes' cells (:func:`aprior.models.deepcams.grid.cell_patch_index`).

Training items are augmented (when ``augment``): a longitude flip, a latitude flip and,
for temporal items, time reversal (``g0 <-> g1``, ``t -> 1 - t``), each with probability 1/2.

**Two kinds of coarse input.** With ``model_input = p > 0`` and a store holding hourly
0.75 degree model frames (a synthetic PM2.5 world's ``pm25_model`` files), an item's
coarse input frames come from the model with probability ``p`` (where the model has those
hours) and from the area mean of the truth otherwise. The network so learns from inputs
made the way real EAC4 is (a coarse model with its own errors) and from clean
degradations, and depends on neither alone. The targets differ by stage:

* spatial: always the truth (0.25 degree): the stage adds the resolution the coarse field
  lacks, whichever way it was made;
* temporal: the frame *of the same source* at the target hour (the model's own hourly
  frame for a model-input item, the area mean of the truth otherwise). The temporal stage
  interpolates a coarse field in time; asking it to turn model frames into the truth
  would teach it the model's biases (dust x 1.3, cities x 0.8, late fires), which it
  would then "correct" on inputs that do not have them (the area means; real EAC4 with
  other biases). DeepCAMS adds resolution; it does not correct CAMS.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from aprior.errors import ConfigError
from aprior.models.deepcams.archive import FrameStore
from aprior.models.deepcams.data import (
    FACTOR,
    Normalisation,
    TemporalPairs,
    hour_of_day,
    solar_channels,
)


def _crop(frame: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    return frame[rows[:, None], cols[None, :]]


def _tensor(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x, np.float32))[None]


class TemporalPatches(Dataset):
    """Temporal samples ``(G0, G1, t) -> Gt`` cropped from global frames.

    Args:
        store: the hourly frames.
        pairs: the samples to draw from (:func:`~aprior.models.deepcams.data.temporal_pairs`).
        norm: the normalisation applied to every frame.
        grid: "coarse" (0.75 degree, the application's grid) or "fine" (0.25 degree).
        patch: crop side in cells of ``grid``.
        n_samples: the dataset's length (crops per epoch).
        seed: crop seed.
        augment: random flips and time reversal (training only).
    """

    def __init__(self, store: FrameStore, pairs: TemporalPairs, norm: Normalisation, *,
                 grid: str = "coarse", patch: int = 64, n_samples: int = 1024, seed: int = 0,
                 augment: bool = False, model_input: float = 0.0) -> None:
        self.model_input = float(model_input) if grid == "coarse" else 0.0
        if grid not in ("coarse", "fine"):
            raise ConfigError(f"temporal grid must be 'coarse' or 'fine', got {grid!r}")
        if len(pairs) == 0:
            raise ConfigError("no complete 3-hour window of hourly GEOS-CF frames to train on")
        self.store, self.pairs, self.norm = store, pairs, norm
        self.grid, self.patch, self.n, self.seed, self.augment = grid, patch, n_samples, seed, augment
        h, w = store.frame(pairs.h0[0], grid).shape
        if patch > h or patch > w:
            raise ConfigError(f"patch {patch} is larger than the {grid} grid {h} x {w}")
        self.shape = (h, w)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < self.n:
            raise IndexError(i)
        rng = np.random.default_rng([self.seed, int(i)])
        j = int(rng.integers(len(self.pairs)))
        h, w = self.shape
        r0, c0 = int(rng.integers(0, h - self.patch + 1)), int(rng.integers(0, w))
        rows, cols = np.arange(r0, r0 + self.patch), (c0 + np.arange(self.patch)) % w
        h0, h1 = self.pairs.h0[j], self.pairs.h1[j]
        flips = rng.random(3) < 0.5 if self.augment else np.zeros(3, bool)
        use_model = (rng.random() < self.model_input
                     and all(self.store.has_model(x) for x in (h0, h1, self.pairs.ht[j])))
        src = self.store.model if use_model else (lambda x: self.store.frame(x, self.grid))
        g0, g1, gt = (_crop(src(x), rows, cols) for x in (h0, h1, self.pairs.ht[j]))
        t = float(self.pairs.t[j])
        hod = hour_of_day(np.array([h0, h1, self.pairs.ht[j]]))
        hod[1:] = hod[0] + (hod[1:] - hod[0]) % 24.0  # hours after frame 0's, across midnight
        sun = np.broadcast_to(solar_channels(cols * (360.0 / w), hod[None])[0][:, None, :],
                              (6, self.patch, self.patch))
        for axis, flip in ((1, flips[0]), (0, flips[1])):
            if flip:
                g0, g1, gt = (np.flip(a, axis) for a in (g0, g1, gt))
                sun = np.flip(sun, axis + 1)
        if flips[2]:
            g0, g1, t = g1, g0, 1.0 - t
            sun = sun[[2, 3, 0, 1, 4, 5]]
        f = self.norm.forward
        return {"g0": _tensor(f(g0)), "g1": _tensor(f(g1)), "target": _tensor(f(gt)),
                "t": torch.tensor(t, dtype=torch.float32),
                "sun": torch.from_numpy(np.ascontiguousarray(sun, np.float32))}


class SpatialPatches(Dataset):
    """Spatial samples ``coarsen(G) -> G``: a coarse crop and the fine nodes of its cells.

    Args:
        store: the hourly frames (fine) and their coarsening.
        hours: the hours (datetime64[h]) to draw from.
        norm: the normalisation applied to both.
        patch: coarse crop side (the fine target is ``3 * patch``).
        n_samples, seed, augment: as :class:`TemporalPatches` (flips only).
    """

    def __init__(self, store: FrameStore, hours: np.ndarray, norm: Normalisation, *,
                 patch: int = 32, n_samples: int = 1024, seed: int = 0,
                 augment: bool = False, model_input: float = 0.0) -> None:
        from aprior.models.deepcams.grid import cell_patch_index

        self.model_input = float(model_input)
        self._index = cell_patch_index
        self.hours = np.asarray(hours, "datetime64[h]")
        if self.hours.size == 0:
            raise ConfigError("no hourly GEOS-CF frame to train on")
        self.store, self.norm = store, norm
        self.patch, self.n, self.seed, self.augment = patch, n_samples, seed, augment
        h, w = store.coarse(self.hours[0]).shape
        self.shape, self.fine_w = (h, w), store.fine(self.hours[0]).shape[1]
        if patch + 2 > h or patch > w:
            raise ConfigError(f"patch {patch} does not fit in the coarse grid {h} x {w} "
                              "(the pole rows are left out)")

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < self.n:
            raise IndexError(i)
        rng = np.random.default_rng([self.seed, int(i)])
        hour = self.hours[int(rng.integers(self.hours.size))]
        h, w = self.shape
        k0, c0 = int(rng.integers(1, h - self.patch)), int(rng.integers(0, w))
        flips = rng.random(2) < 0.5 if self.augment else np.zeros(2, bool)
        use_model = rng.random() < self.model_input and self.store.has_model(hour)
        src = self.store.model(hour) if use_model else self.store.coarse(hour)
        coarse = _crop(src, np.arange(k0, k0 + self.patch), (c0 + np.arange(self.patch)) % w)
        rows, cols = self._index(k0, c0, self.patch, self.patch, self.fine_w, FACTOR)
        fine = _crop(self.store.fine(hour), rows, cols)
        for axis, flip in ((1, flips[0]), (0, flips[1])):
            if flip:
                coarse, fine = np.flip(coarse, axis), np.flip(fine, axis)
        return {"coarse": _tensor(self.norm.forward(coarse)),
                "fine": _tensor(self.norm.forward(fine))}
