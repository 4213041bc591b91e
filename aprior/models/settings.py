"""Training settings of the shared engine (:mod:`aprior.models.engine`) and what a run cost.

A run is configured by one frozen :class:`TrainSettings` (the ``[train]`` table of a
``--config`` TOML); :func:`run_budget` sums a run's per-epoch records into the budget the
weights file records.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from aprior.errors import ConfigError

LR_SCHEDULES = ("constant", "cosine", "plateau")
AMP_MODES = ("auto", "bf16", "off")
#: settings that may change on resume without breaking exactness
FREE_ON_RESUME = {"epochs", "patience", "device", "num_workers", "plateau_reductions", "time_limit_s"}



@dataclass(frozen=True)
class TrainSettings:
    """How to train (the defaults are DACNO2's: effective batch 56, 200 epochs).

    ``batch_size`` is the effective batch: each optimizer step accumulates
    ``ceil(batch_size / (micro_batch * world_size))`` micro-batches. ``max_batches`` caps
    the micro-batches of every epoch, in training and in validation (smoke runs).
    ``lr_schedule`` "cosine" decays the rate from ``lr`` towards 0 over ``epochs``;
    "plateau" multiplies it by ``plateau_factor`` whenever the validation loss has not
    improved for ``plateau_epochs`` epochs (the paper's learning-rate reduction), so that
    a run trains to convergence: it ends at the plateau that would make the
    ``plateau_reductions + 1``-th reduction (and, with ``patience``, as before).
    ``time_limit_s`` ends an invocation before an epoch that would end after that many
    seconds (judged by the last epoch's duration); ``--resume`` continues it.
    """

    epochs: int = 200
    batch_size: int = 56
    micro_batch: int = 2
    lr: float = 1e-3
    weight_decay: float = 1e-5
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"
    grad_clip: float | None = 1.0
    num_workers: int = 0
    max_batches: int | None = None
    patience: int | None = None
    lr_schedule: str = "constant"
    plateau_epochs: int = 3
    plateau_factor: float = 0.5
    plateau_reductions: int = 3
    time_limit_s: float | None = None

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "micro_batch"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("max_batches", "patience"):
            v = getattr(self, name)
            if v is not None and int(v) < 1:
                raise ConfigError(f"{name} must be at least 1 (or unset), got {v}")
        if not self.lr > 0 or not math.isfinite(self.lr):
            raise ConfigError(f"lr must be a positive number, got {self.lr}")
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay must not be negative, got {self.weight_decay}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ConfigError(f"grad_clip must be positive (or unset), got {self.grad_clip}")
        if self.num_workers < 0:
            raise ConfigError(f"num_workers must not be negative, got {self.num_workers}")
        if self.amp not in AMP_MODES:
            raise ConfigError(f"amp must be one of {', '.join(AMP_MODES)}, got {self.amp!r}")
        if int(self.plateau_epochs) < 1:
            raise ConfigError(f"plateau_epochs must be at least 1, got {self.plateau_epochs}")
        if not 0.0 < self.plateau_factor < 1.0:
            raise ConfigError(f"plateau_factor must be in (0, 1), got {self.plateau_factor}")
        if self.time_limit_s is not None and not self.time_limit_s > 0:
            raise ConfigError(f"time_limit_s must be positive (or unset), got {self.time_limit_s}")
        if int(self.plateau_reductions) < 0:
            raise ConfigError(f"plateau_reductions must not be negative, got {self.plateau_reductions}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")

    def accumulation(self, world_size: int = 1) -> int:
        """Micro-batches per optimizer step on each rank."""
        return max(1, math.ceil(self.batch_size / (self.micro_batch * world_size)))

    def lr_at(self, progress: float) -> float:
        """The learning rate after the fraction ``progress`` in [0, 1] of the training."""
        if self.lr_schedule == "cosine":
            return self.lr * 0.5 * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))
        return self.lr

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> TrainSettings:
        """Settings from a mapping (a TOML table); unknown keys are a ConfigError."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown training setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**values)



def run_budget(history: list[dict], stopped: str | None = None) -> dict:
    """What a run cost, from its per-epoch records: epochs, samples and seconds."""
    out = {"epochs_run": len(history),
           "samples": int(sum(r.get("samples", 0) for r in history)),
           "train_seconds": round(float(sum(r.get("train_seconds", 0.0) for r in history)), 1),
           "wall_seconds": round(float(sum(r.get("seconds", 0.0) for r in history)), 1)}
    if stopped is not None:
        out["stopped"] = stopped
    return out
