"""Training the two DeepCAMS stages on hourly GEOS-CF(-like) PM2.5 with the shared engine.

:func:`train_stage` makes the samples (:mod:`~aprior.models.deepcams.patches`) from a data
directory, holds out the last days (validation, then test), fits the normalisation on the
training days and hands a :class:`DeepCAMSTask` to :func:`aprior.models.engine.train`.
The weights file records everything needed to use the model again: model, stage, preset,
config, normalisation, the data split and, for a synthetic world, ``trained_on`` starting
with ``"SYNTHETIC"``.

A config file (TOML) may hold a ``[model]`` table (fields of the stage's config class,
overriding the preset) and a ``[data]`` table (fields of
:class:`~aprior.models.deepcams.data.DataSpec`); a ``[train]`` table is left to the caller.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from aprior.config import load_toml
from aprior.errors import ConfigError
from aprior.models.deepcams.archive import FrameStore, PM25Data, open_pm25_data
from aprior.models.deepcams.data import (
    DataSpec,
    DaySplit,
    Normalisation,
    hours_of_days,
    split_days,
    temporal_pairs,
)
from aprior.models.deepcams.patches import SpatialPatches, TemporalPatches
from aprior.models.engine import TrainResult, TrainSettings, train

log = logging.getLogger(__name__)

STAGES = ("temporal", "spatial")


def check_stage(stage: str) -> str:
    """``stage`` if it is "temporal" or "spatial", else ConfigError."""
    if stage not in STAGES:
        raise ConfigError(f"unknown DeepCAMS stage {stage!r}; use 'temporal' or 'spatial'")
    return stage


def _config_class(stage: str) -> Any:
    if check_stage(stage) == "temporal":
        from aprior.models.deepcams.temporal import TemporalConfig
        return TemporalConfig
    from aprior.models.deepcams.spatial import SpatialConfig
    return SpatialConfig


def _from_mapping(cls: Any, base: Any, values: dict, what: str) -> Any:
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"unknown {what} setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    try:
        return dataclasses.replace(base, **fixed) if base is not None else cls(**fixed)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"bad {what} settings ({exc})") from exc


def model_config(stage: str, preset: str = "small", overrides: dict | None = None) -> Any:
    """The stage's network config: the preset, with ``overrides`` (a ``[model]`` table)."""
    cls = _config_class(stage)
    base = cls.preset(preset)
    return _from_mapping(cls, base, overrides or {}, f"{stage} model") if overrides else base


def config_from_metadata(stage: str, config: dict) -> Any:
    """The stage's network config from a weights file's ``"config"`` record."""
    return _from_mapping(_config_class(stage), None, dict(config), f"{stage} model")


def build_network(stage: str, config: Any, norm: Normalisation | None = None) -> nn.Module:
    """A fresh network of ``stage`` for ``config`` (random weights); ``norm``: the stage's
    normalisation (the temporal net's blend in ug m-3 uses it)."""
    if check_stage(stage) == "temporal":
        from aprior.models.deepcams.temporal import TemporalNet
        net = TemporalNet(config)
        return net if norm is None else net.set_normalisation(norm.scale, norm.mean, norm.std)
    from aprior.models.deepcams.spatial import SpatialNet
    return SpatialNet(config)


def check_crop(stage: str, config: Any, spec: DataSpec) -> None:
    """ConfigError when the network cannot run on the training crops of ``spec`` (one
    forward pass on zeros: e.g. the paper-size temporal net needs crops of 128 or more)."""
    net = build_network(stage, config).eval()
    p = spec.temporal_patch if stage == "temporal" else spec.spatial_patch
    x = torch.zeros(1, 1, p, p)
    sun = torch.zeros(1, getattr(config, "aux_channels", 0), p, p)
    try:
        with torch.no_grad():
            net(x, x, torch.full((1,), 0.5), sun=sun) if stage == "temporal" else net(x)
    except (RuntimeError, ValueError) as exc:
        name = "temporal_patch" if stage == "temporal" else "spatial_patch"
        raise ConfigError(f"the {stage} network of this config cannot run on {p} x {p} crops "
                          f"({str(exc).splitlines()[0]}); set a larger {name} in the [data] table") from exc


def read_config_file(path: Path | None) -> tuple[dict, dict]:
    """The ``[model]`` and ``[data]`` tables of a TOML config file (empty without one)."""
    if path is None:
        return {}, {}
    p = Path(path)
    doc = load_toml(p)
    unknown = sorted(set(doc) - {"model", "data", "train"})
    if unknown:
        raise ConfigError(f"has unknown table(s) {', '.join(unknown)}; use [model], [data], [train]", p)
    for key in ("model", "data"):
        if not isinstance(doc.get(key, {}), dict):
            raise ConfigError(f"its {key!r} entry must be a table", p)
    return dict(doc.get("model", {})), dict(doc.get("data", {}))


class DeepCAMSTask:
    """The :class:`~aprior.models.engine.TrainTask` of one DeepCAMS stage.

    Args:
        stage: "temporal" or "spatial".
        data: the data directory's files; store: its hourly frames.
        split: the held-out days; spec: how samples are made.
        config: the network config; preset: its preset name.
        norm: the normalisation (fitted on the training days).
    """

    def __init__(self, stage: str, data: PM25Data, store: FrameStore, split: DaySplit,
                 spec: DataSpec, config: Any, preset: str, norm: Normalisation) -> None:
        self.stage = check_stage(stage)
        self.name = f"deepcams-{stage}"
        self.data, self.store, self.split, self.spec = data, store, split, spec
        self.config, self.preset, self.norm = config, preset, norm

    def build_model(self) -> nn.Module:
        return build_network(self.stage, self.config, self.norm)

    def _dataset(self, days: tuple, n: int, seed: int, augment: bool) -> torch.utils.data.Dataset:
        hours = hours_of_days(self.store.hours, days)
        if self.stage == "spatial":
            return SpatialPatches(self.store, hours, self.norm, patch=self.spec.spatial_patch,
                                  n_samples=n, seed=seed, augment=augment,
                                  model_input=self.spec.model_input)
        pairs = temporal_pairs(hours, self.spec.gap_hours, self.spec.train_stride)
        return TemporalPatches(self.store, pairs, self.norm, grid=self.spec.temporal_grid,
                               patch=self.spec.temporal_patch, n_samples=n, seed=seed,
                               augment=augment, model_input=self.spec.model_input)

    def train_dataset(self) -> torch.utils.data.Dataset:
        return self._dataset(self.split.train, self.spec.train_samples, self.spec.seed, self.spec.augment)

    def val_dataset(self) -> torch.utils.data.Dataset:
        return self._dataset(self.split.val, self.spec.val_samples, self.spec.seed + 1, False)

    def _forward(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[Any, Tensor, Tensor]:
        if self.stage == "temporal":
            out = model(batch["g0"], batch["g1"], batch["t"], sun=batch.get("sun"))
            return out, out["pred"], batch["target"]
        pred = model(batch["coarse"])
        return pred, pred, batch["fine"]

    def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        out, _, target = self._forward(model, batch)
        if self.stage == "temporal":
            from aprior.models.deepcams.temporal import temporal_loss
            return temporal_loss(out, target, batch["g0"], batch["g1"],
                                 linear_weight=self._linear_weight(),
                                 to_concentration=self.norm.inverse, scale=self.norm.scale,
                                 delta=float(getattr(self.config, "loss_delta", 5.0)))
        from aprior.models.deepcams.spatial import spatial_loss
        return spatial_loss(out, target)

    def _linear_weight(self) -> float:
        return float(getattr(self.config, "loss_linear", 0.0)) if self.stage == "temporal" else 0.0

    def val_loss(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """L1 of the final prediction (normalised units), plus, for a temporal config with
        ``loss_linear``, that weight times the Huber term in ug m-3 the training loss adds:
        the model is selected on what it is trained for."""
        _, pred, target = self._forward(model, batch)
        l1 = (pred.float() - target.float()).abs().mean()
        parts = {"l1": float(l1)}
        w = self._linear_weight()
        if w > 0:
            from aprior.models.deepcams.temporal import conc_huber
            hub = conc_huber(self.norm.inverse(pred.float()), self.norm.inverse(target.float()),
                             self.norm.scale, float(self.config.loss_delta))
            parts["huber_conc"] = float(hub)
            l1 = l1 + w * hub
        return l1, parts

    def metadata(self) -> dict:
        trained_on = self.data.description  # starts with "SYNTHETIC world" for a synthetic world
        if self.data.synthetic:
            trained_on += ": SYNTHETIC data only, the model has never seen real data"
        return {
            "model": self.name, "stage": self.stage, "preset": self.preset,
            "config": dataclasses.asdict(self.config),
            "normalisation": self.norm.to_dict(),
            "temporal_grid": self.spec.temporal_grid if self.stage == "temporal" else None,
            "gap_hours": self.spec.gap_hours,
            "data": {"spec": dataclasses.asdict(self.spec), "split": self.split.to_dict(),
                     "files": [p.name for p in self.data.geoscf_files],
                     "synthetic": self.data.synthetic},
            "trained_on": trained_on,
            "seed": self.spec.seed,
        }

    def initial_state(self) -> dict[str, Tensor] | None:
        return None


def _check_hours(store: FrameStore, split: DaySplit, spec: DataSpec) -> None:
    full = np.arange(store.hours[0], store.hours[-1] + np.timedelta64(1, "h"), dtype="datetime64[h]")
    missing = np.setdiff1d(full, store.hours)
    if missing.size:
        log.warning("the GEOS-CF data lacks %d of the hours from %s to %s (first missing: %s); "
                    "windows across the gaps are skipped", missing.size, store.hours[0],
                    store.hours[-1], missing[0])
    for name in ("train", "val"):
        days = getattr(split, name)
        pairs = temporal_pairs(hours_of_days(store.hours, days), spec.gap_hours, spec.train_stride)
        if len(pairs) == 0:
            raise ConfigError(f"the {name} days ({', '.join(str(d) for d in days)}) have no complete "
                              f"{spec.gap_hours}-hour window of hourly GEOS-CF frames",
                              store.files[0].parent)


def prepare(data: Path, spec: DataSpec) -> tuple[PM25Data, FrameStore, DaySplit]:
    """Open a data directory, index its hours and split its days (checks included)."""
    d = open_pm25_data(data)
    store = FrameStore(d.geoscf_files, spec.cache_files, model_files=d.model_files)
    if spec.model_input > 0 and not d.model_files:
        log.warning("model_input = %g but the data has no hourly model files; every coarse "
                    "input is the area mean of the truth", spec.model_input)
    split = split_days(store.days, spec.val_days, spec.test_days)
    _check_hours(store, split, spec)
    return d, store, split


def fit_normalisation(store: FrameStore, days: tuple, grid: str, scale: float,
                      max_frames: int = 24) -> Normalisation:
    """:meth:`Normalisation.fit` on up to ``max_frames`` hours of the training days, evenly spread."""
    hours = hours_of_days(store.hours, days)
    pick = hours[np.unique(np.linspace(0, hours.size - 1, min(max_frames, hours.size)).astype(int))]
    return Normalisation.fit([store.frame(h, grid) for h in pick], scale)


def train_stage(stage: str, data: Path, run_dir: Path, *, preset: str = "small",
                config: Path | None = None, settings: TrainSettings | None = None,
                resume: bool = False, progress: Callable[[dict], None] | None = None,
                spec: DataSpec | None = None, command: str | None = None) -> TrainResult:
    """Train one DeepCAMS stage on the hourly GEOS-CF(-like) data of ``data``.

    Args:
        stage: "temporal" (XVFI-like frame interpolation) or "spatial" (ABPN-like x3).
        data: a synthetic world or a directory of GEOS-CF files (see
            :func:`~aprior.models.deepcams.archive.open_pm25_data`).
        run_dir: the engine's run directory (new or empty; or the run to resume).
        preset: network size ("paper", "small", "tiny").
        config: optional TOML with ``[model]`` and ``[data]`` tables.
        settings: engine settings (None: :class:`TrainSettings` defaults).
        resume: continue the run in ``run_dir``.
        progress: passed to :func:`aprior.models.engine.train`.
        spec: the data spec (None: defaults, updated by the config's ``[data]`` table).
        command: the command line, recorded in the weights' metadata.

    Raises:
        ConfigError: unknown stage/preset/setting, too few days, no complete window.
        InputFileError: no or unreadable GEOS-CF files.
        OutputExistsError: ``run_dir`` not empty without ``resume``.
    """
    check_stage(stage)
    model_over, data_over = read_config_file(config)
    spec = spec or DataSpec()
    if data_over:
        spec = DataSpec.from_mapping({**dataclasses.asdict(spec), **data_over})
    cfg = model_config(stage, preset, model_over)
    check_crop(stage, cfg, spec)
    d, store, split = prepare(Path(data), spec)
    grid = spec.temporal_grid if stage == "temporal" else "coarse"
    norm = fit_normalisation(store, split.train, grid, spec.norm_scale)
    log.info("DeepCAMS %s: %d training, %d validation, %d test day(s); normalisation %s",
             stage, len(split.train), len(split.val), len(split.test), norm)
    task = DeepCAMSTask(stage, d, store, split, spec, cfg, preset, norm)
    return train(task, settings or TrainSettings(), Path(run_dir), resume=resume, progress=progress,
                 command=command)
