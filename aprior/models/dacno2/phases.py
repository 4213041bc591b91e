"""The three training phases of DACNO2 (paper Sect. 2.4) as engine tasks.

=====  ==========================  ================================================  ==========
phase  starts from                 loss (training and validation)                    days
=====  ==========================  ================================================  ==========
1      random weights              MSE + (1 - SSIM) against CAMS at 8 km             train/val
2      phase 1's best weights      phase 1's loss + masked MSE against the training  train/val
                                   stations on the surface layer at 2 km
3      phase 2's best weights      masked MSE against the training stations in the   test year,
                                   test year + (1 - SSIM) against the frozen phase-2  80/20 by
                                   predictions at 8 km                               day
=====  ==========================  ================================================  ==========

Predictions are ratio-scaled (CAMS / layer ratio, :mod:`aprior.models.dacno2.targets`);
the surface ratio is 1, so the surface layer compares with stations in ug m-3 as it is.
"At 8 km" means the 2 km prediction average-pooled 4 x 4. SSIM is computed per layer on
slices min-max normalised with the *target's* lo/hi applied to both fields
(:func:`aprior.models.losses.ssim_per_layer`), so a bias is not normalised away. Station
terms use the training station cells only; the evaluation cells are never trained on.
Phase 3's frozen phase-2 model is a copy of the predecessor run in eval mode under
``no_grad`` on every batch; with ``phase3_eval_layers`` (the default) the network being
trained keeps its batch norms and dropouts in eval mode too (:meth:`PhaseTask.train_mode`).

A phase that needs a predecessor refuses a missing one, one of another phase, and one
trained with another configuration, data spec, grid or normalisation (ConfigError).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from aprior.errors import ConfigError, InputFileError
from aprior.models.checkpoint import load_weights, weights_hash
from aprior.models.dacno2.config import DACNO2Config, PhaseConfig
from aprior.models.dacno2.dataset import PatchDataset
from aprior.models.dacno2.model import DACNO2, INPUT_KEYS
from aprior.models.dacno2.predict import MODEL_NAME, weights_file
from aprior.models.dacno2.prepare import Prepared
from aprior.models.losses import avg_pool_xy, block_detail, masked_mse, ssim_per_layer

log = logging.getLogger(__name__)

PHASES = (1, 2, 3)
#: 2 km cells per 8 km CAMS cell side
CAMS_FACTOR = 4
#: 8 km CAMS cells per block side of ``cams_detail_mse`` (32 km blocks)
DETAIL_BLOCK = 4


@dataclass(frozen=True)
class Predecessor:
    """The weights a phase starts from (phase 2: phase 1's; phase 3: phase 2's; phase 1,
    optionally: another phase-1 run's, a warm start).

    Attributes:
        path: the weights file; ``sha256`` its digest.
        state: the state dict.
        metadata: its metadata (parsed JSON).
    """

    path: Path
    sha256: str
    state: dict[str, Tensor]
    metadata: dict

    @property
    def phase(self) -> int | None:
        return self.metadata.get("phase")

    @property
    def base_lr(self) -> float | None:
        """Phase 1's learning rate, passed on from phase to phase."""
        v = self.metadata.get("base_lr")
        return float(v) if v is not None else None

    def describe(self) -> dict:
        return {"path": str(self.path), "sha256": self.sha256, "phase": self.phase,
                "best_epoch": self.metadata.get("training", {}).get("best_epoch")}

    def lineage(self) -> list[dict]:
        """The earlier phases, oldest first: each one's phase, weights sha256, command,
        budget, best epoch, settings and days (what the phases after it record)."""
        t = self.metadata.get("training", {})
        own = {"phase": self.phase, "sha256": self.sha256, "command": t.get("command"),
               "budget": t.get("budget"), "best_epoch": t.get("best_epoch"),
               "best_val": t.get("best_val"), "settings": t.get("settings"),
               "days": self.metadata.get("days"), "data": self.metadata.get("data")}
        return [*self.metadata.get("lineage", []), own]


def check_phase(phase: int) -> int:
    if phase not in PHASES:
        raise ConfigError(f"phase must be 1, 2 or 3, got {phase}")
    return int(phase)


def load_predecessor(phase: int, source: str | os.PathLike[str] | None) -> Predecessor | None:
    """The weights phase ``phase`` starts from.

    Phase 2 starts from phase 1's weights, phase 3 from phase 2's. Phase 1 starts from
    random weights (``source`` None) or, as a warm start, from another phase-1 run's (to
    continue a phase 1 with other loss weights or another schedule).

    Args:
        phase: 1, 2 or 3.
        source: the predecessor's run directory (its ``weights.pt``, else ``best.pt``) or
            weights file.

    Raises:
        ConfigError: phase 2/3 without ``source``, or weights of another model or phase.
        InputFileError: the weights cannot be found or read.
    """
    check_phase(phase)
    if phase == 1 and source is None:
        return None
    if source is None:
        raise ConfigError(f"phase {phase} starts from phase {phase - 1}'s best weights; pass "
                          f"--from with the run directory of phase {phase - 1}")
    want = max(phase - 1, 1)
    try:
        path = weights_file(source)
    except InputFileError as exc:
        raise ConfigError(f"phase {phase} needs phase {want}'s weights, but {exc}") from None
    state, meta = load_weights(path)
    if meta.get("model") != MODEL_NAME:
        raise ConfigError(f"holds weights of model {meta.get('model')!r}; phase {phase} starts "
                          f"from DACNO2 phase {want}", path)
    if meta.get("phase") != want:
        hint = ("a warm start of phase 1 takes phase-1 weights" if phase == 1
                else f"train phase {want} first")
        raise ConfigError(f"holds DACNO2 phase-{meta.get('phase')} weights; phase {phase} starts "
                          f"from phase {want} ({hint})", path)
    return Predecessor(path, weights_hash(path), state, meta)


def check_predecessor(pred: Predecessor, *, phase: int, config: DACNO2Config,
                      prepared: Prepared) -> None:
    """Refuse a predecessor trained with another configuration, spec, grid or statistics.

    A warm start of phase 1 (``phase == 1``) is only a starting point: it needs the same
    network and levels, while other data (another world or period, hence other input
    statistics and layer ratios) are allowed and logged; the lineage records them.
    """
    meta, data = pred.metadata, prepared.metadata()
    checks = (("network configuration", meta.get("config"), config.to_dict(), False),
              ("levels", meta.get("levels_m"), list(prepared.spec.levels_m), False),
              ("data spec", meta.get("spec"), prepared.spec.to_dict(), True),
              ("grid", meta.get("grid"), data["grid"], True),
              ("input statistics", meta.get("stats"), data["stats"], True),
              ("layer ratios", meta.get("ratios"), data["ratios"], True))
    for what, old, new, warm_ok in checks:
        if old != new and phase == 1 and warm_ok:
            log.warning("warm start from %s, trained with another %s", pred.path, what)
        elif old != new:
            extra = ""
            if isinstance(old, dict) and isinstance(new, dict):
                keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
                extra = f" (differs in {', '.join(keys[:6])})"
            prev = max(phase - 1, 1)
            raise ConfigError(f"phase {phase} must continue phase {prev} with the same {what}, "
                              f"but it differs{extra}; use the data, preset and configuration "
                              f"of phase {prev}", pred.path)


def _held_out(n: int, fraction: float, seed: int, stream: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, held out) of ``n >= 2`` items, ``fraction`` (1 to n - 1) held out, seeded."""
    order = np.random.default_rng([seed, stream]).permutation(n)
    n_val = min(max(int(round(fraction * n)), 1), n - 1)
    return order[n_val:], order[:n_val]


def phase3_days(test_dates: list[dt.date], fraction: float,
                seed: int) -> tuple[list[dt.date], list[dt.date]]:
    """Phase 3's (train, val) days: the test year's days split at random by day."""
    if len(test_dates) < 2:
        raise ConfigError(f"phase 3 fine-tunes on the test year's station data, but the prepared "
                          f"data hold {len(test_dates)} day(s) of a test year; it needs at least 2")
    kept, val = _held_out(len(test_dates), fraction, seed, 3)
    return sorted(test_dates[i] for i in kept), sorted(test_dates[i] for i in val)


def phase3_cells(train_cells: np.ndarray, fraction: float,
                 seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Phase 3's (fit, validation) station cells: ``fraction`` of the training cells, at
    random (seeded), held out of the fit; with ``fraction`` 0 both are all training cells."""
    cells = np.sort(np.asarray(train_cells, dtype=np.int64))
    if fraction <= 0:
        return cells, cells
    if cells.size < 2:
        raise ConfigError(f"phase3_val_cells = {fraction} needs at least 2 training station "
                          f"cells, the prepared data have {cells.size}")
    kept, val = _held_out(cells.size, fraction, seed, 11)
    return np.sort(cells[kept]), np.sort(cells[val])


def _spread(days: list[dt.date], seed: int) -> list[dt.date]:
    """Days in a seeded random order, so that a capped validation (``max_batches``) still
    sees days from the whole period."""
    order = np.random.default_rng([seed, 7]).permutation(len(days))
    return [days[i] for i in order]


class PhaseTask:
    """The engine task of one DACNO2 phase (see the module docstring).

    Args:
        phase: 1, 2 or 3.
        prepared: the prepared data.
        config: the network configuration.
        preset: the preset name it came from ("custom" if changed), for the metadata.
        predecessor: phase 2/3's starting weights (:func:`load_predecessor`).
        options: loss weights and phase settings.
        base_lr: phase 1's learning rate (recorded so later phases can derive theirs).
        trained_on: what the data are, for the metadata (e.g. "SYNTHETIC world ...").
    """

    def __init__(self, phase: int, prepared: Prepared, config: DACNO2Config, *,
                 preset: str = "custom", predecessor: Predecessor | None = None,
                 options: PhaseConfig | None = None, base_lr: float | None = None,
                 trained_on: str | None = None) -> None:
        self.phase = check_phase(phase)
        if phase > 1 and predecessor is None:
            raise ConfigError(f"phase {phase} needs predecessor weights")
        if predecessor is not None:
            check_predecessor(predecessor, phase=phase, config=config, prepared=prepared)
        if len(prepared.spec.levels_m) != config.n_levels:
            raise ConfigError(f"the data have {len(prepared.spec.levels_m)} levels, the network "
                              f"{config.n_levels}; set [model] n_levels to match")
        if prepared.spec.patch != config.patch:
            raise ConfigError(f"the data are cut in patches of {prepared.spec.patch} cells, the "
                              f"network expects {config.patch}; set [data] patch = {config.patch}")
        if phase > 1 and prepared.train_cells.size == 0:
            raise ConfigError(f"phase {phase} fits EEA training stations, but the prepared data "
                              "have none (no station qualifies: background or industrial, "
                              ">= 20 % valid values in the year)", prepared.root)
        self.name = f"dacno2-phase{phase}"
        self.prepared, self.config, self.preset = prepared, config, preset
        self.predecessor, self.options = predecessor, options or PhaseConfig()
        self.base_lr, self.trained_on = base_lr, trained_on
        seed = prepared.spec.seed
        if phase == 3:
            self.train_days, self.val_days = phase3_days(
                prepared.test_dates, self.options.phase3_val_fraction, seed)
        else:
            self.train_days, self.val_days = list(prepared.train_dates), list(prepared.val_dates)
        self.val_days = _spread(self.val_days, seed)
        self.fit_cells, self.val_cells = phase3_cells(
            prepared.train_cells, self.options.phase3_val_cells if phase == 3 else 0.0, seed)
        self._frozen: nn.Module | None = None
        heights = np.asarray(prepared.spec.levels_m, dtype=np.float64)
        self.profile_levels = [int(k) for k in np.flatnonzero(heights <= self.options.station_profile_top_m)] or [0]
        self._scales: dict[str, float] | None = None

    # -- engine protocol ----------------------------------------------------------------
    def build_model(self) -> nn.Module:
        """A new network; in phase 1 its output bias starts at the training targets' mean
        (``init_output_bias``), so training does not spend its first steps on the scale."""
        model = DACNO2(self.config)
        if self.phase == 1 and self.predecessor is None and self.options.init_output_bias:
            try:
                head = model.decoder["head"]
            except (AttributeError, KeyError, TypeError):
                head = None
            if isinstance(getattr(head, "bias", None), Tensor):
                mean = self.target_mean()
                with torch.no_grad():  # softplus^-1(mean)
                    head.bias.fill_(float(mean + np.log(-np.expm1(-mean))))
                log.info("phase 1: output bias set for a mean of %.3g ug m-3", mean)
        return model

    def target_mean(self, max_days: int = 16) -> float:
        """Mean ratio-scaled CAMS target over (up to ``max_days`` of) the training days: the
        surface mean, since each layer is divided by its mean ratio to the surface."""
        days = self.train_days[:: max(1, len(self.train_days) // max_days)][:max_days]
        values = [np.nanmean(self.prepared.day(d).cams[0]) for d in days]
        mean = float(np.nanmean(values)) if values else float("nan")
        return mean if np.isfinite(mean) and mean > 0 else 1.0

    def _dataset(self, days: list[dt.date], cells: np.ndarray) -> PatchDataset:
        return PatchDataset(self.prepared, days, stations="none" if self.phase == 1 else cells)

    def train_dataset(self) -> PatchDataset:
        return self._dataset(self.train_days, self.fit_cells)

    def val_dataset(self) -> PatchDataset:
        return self._dataset(self.val_days, self.val_cells)

    def initial_state(self) -> dict[str, Tensor] | None:
        return None if self.predecessor is None else self.predecessor.state

    def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """The phase's loss of a micro-batch (mean over it) and its named parts."""
        pred = model(**{k: batch[k] for k in INPUT_KEYS})  # (B, Z, P, P) ratio-scaled
        o, parts = self.options, {}
        total = pred.new_zeros((), dtype=torch.float32)
        scales = self.loss_scales()
        if self.phase in (1, 2):
            pooled = avg_pool_xy(pred, CAMS_FACTOR)
            mask = batch["cams_mask"]
            mse = masked_mse(pooled, batch["cams"], mask)
            ssim = ssim_per_layer(pooled, batch["cams"], mask, o.ssim_window)
            total = (total + o.cams_mse * self.normalised(mse, pooled, batch["cams"], mask, "cams")
                     + o.cams_ssim * (1.0 - ssim))
            parts.update(mse_cams=float(mse.detach()), ssim_cams=float(ssim.detach()))
            logs = (self.logs(pooled, batch["cams"])
                    if o.cams_log_mse > 0 or o.cams_detail_mse > 0 else None)
            if o.cams_log_mse > 0:
                lmse = masked_mse(*logs, mask)
                total = total + o.cams_log_mse * self.normalised(lmse, *logs, mask, "log")
                parts["log_mse_cams"] = float(lmse.detach())
            if o.cams_shape_mse > 0:
                smse = self.shape_mse(pooled, batch["cams"], mask)
                total = total + o.cams_shape_mse * smse / scales["shape"]
                parts["shape_mse_cams"] = float(smse.detach())
            if o.cams_detail_mse > 0:
                (dp, ok), (dt, _) = (block_detail(v, mask, DETAIL_BLOCK) for v in logs)
                dmse = masked_mse(dp, dt, ok)
                total = total + o.cams_detail_mse * dmse / scales["detail"]
                parts["detail_mse_cams"] = float(dmse.detach())
        if self.phase in (2, 3):
            st = self.station_mse(pred, batch)
            total = total + o.stations * st / scales["stations"]
            parts["mse_stations"] = float(st.detach())
            parts["n_stations"] = float(batch["station_mask"].sum())
        if self.phase == 3:
            ref = avg_pool_xy(self.frozen_predictions(batch), CAMS_FACTOR)
            pooled = avg_pool_xy(pred, CAMS_FACTOR)
            ssim = ssim_per_layer(pooled, ref, None, o.ssim_window)
            total = total + o.frozen_ssim * (1.0 - ssim)
            parts["ssim_phase2"] = float(ssim.detach())
            if o.frozen_log_mse > 0:
                logs, every = self.logs(pooled, ref), torch.ones_like(ref, dtype=torch.bool)
                lmse = masked_mse(*logs, every)
                total = total + o.frozen_log_mse * self.normalised(lmse, *logs, every, "log")
                parts["log_mse_phase2"] = float(lmse.detach())
        return total, parts

    def normalised(self, mse: Tensor, pred: Tensor, target: Tensor, mask: Tensor,
                   key: str) -> Tensor:
        """The term ``mse`` (``masked_mse(pred, target, mask)``, ``(B, Z, h, w)`` fields)
        over its scale ``loss_scales()[key]``: one variance over all levels, or with
        ``normalise_levels`` a ``(Z,)`` list of them, each level's squared errors divided by
        its own (dimensionless either way)."""
        scale = self.loss_scales()[key]
        if not isinstance(scale, list):
            return mse / scale
        w = torch.tensor(scale, dtype=torch.float32, device=pred.device).rsqrt().view(1, -1, 1, 1)
        return masked_mse(pred.float() * w, target.float() * w, mask)

    def logs(self, pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """``log(x + log_floor)`` of a prediction and its target (masked-out NaN targets
        read as 0): their MSE is a relative error, of the same weight for a clean and a
        polluted cell (dimensionless, squared e-folds)."""
        f = self.options.log_floor
        return (torch.log(pred.float().clamp(min=0) + f),
                torch.log(target.float().nan_to_num(0.0).clamp(min=0) + f))

    def shape_mse(self, pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
        """MSE of the vertical shape (dimensionless) over the ``(B, h, w)`` columns that
        ``mask`` holds at every level; ``pred`` and ``target`` are ``(B, Z, h, w)``."""
        cols = mask.bool().all(dim=1, keepdim=True)
        return masked_mse(vertical_shape(pred.float().clamp(min=0), self.options.log_floor),
                          vertical_shape(target.float().nan_to_num(0.0).clamp(min=0),
                                         self.options.log_floor), cols)

    def station_mse(self, pred: Tensor, batch: dict[str, Tensor]) -> Tensor:
        """The station term (ug2 m-6): the surface layer against the stations (the paper),
        or with ``station_profile_top_m`` every level up to that height against the
        station value times the CAMS field's local shape ``cams_z / cams_0`` at the cell
        (ratio-scaled; CAMS's 8 km cells repeated onto the 2 km cells they hold)."""
        s, m = batch["stations"], batch["station_mask"]
        k = self.profile_levels
        if len(k) == 1:
            return masked_mse(pred[:, 0], s, m)
        up = CAMS_FACTOR
        cams = batch["cams"][:, k].repeat_interleave(up, -2).repeat_interleave(up, -1)
        ok = batch["cams_mask"][:, k].repeat_interleave(up, -2).repeat_interleave(up, -1)
        shape = (cams / cams[:, :1].clamp(min=0.1)).clamp(0.0, 3.0)
        mask = m[:, None] & ok & ok[:, :1]
        return masked_mse(pred[:, k], s[:, None] * shape, mask)

    def loss_scales(self, max_days: int = 16) -> dict[str, float]:
        """The variances the MSE terms are divided by (1 each without ``normalise``): of
        the ratio-scaled CAMS targets over all levels, of their ``log(x + log_floor)`` (for
        the log-space terms), of their vertical shape (``cams_shape_mse``), of the 32 km
        detail of that log (``cams_detail_mse``), and of the training stations' values, over (up to
        ``max_days`` of) the training days; computed once. With ``normalise_levels`` the
        CAMS and log variances are ``(Z,)`` lists, one per level."""
        if self._scales is None:
            self._scales = {"cams": 1.0, "stations": 1.0, "log": 1.0, "shape": 1.0, "detail": 1.0}
            if self.options.normalise:
                p = self.prepared
                days = self.train_days[:: max(1, len(self.train_days) // max_days)][:max_days]
                use = np.isin(p.station_cells, self.fit_cells)
                cams, st, logs, shapes, details = [], [], [], [], []
                floor = self.options.log_floor
                for d in days:
                    arr = p.day(d)
                    c = p.ratios.apply(arr.cams, axis=0)  # (Z, h, w)
                    cams.append(c.reshape(len(c), -1))
                    c = np.clip(c, 0, None)
                    lc = np.log(c + floor)
                    logs.append(lc.reshape(len(c), -1))
                    shapes.append(np.ravel(vertical_shape(c, floor, axis=0)))
                    lc = torch.from_numpy(lc)
                    det, ok = block_detail(lc, torch.isfinite(lc), DETAIL_BLOCK)
                    details.append(det[ok].numpy())
                    st.append(np.asarray(arr.stations)[use])
                levels = self.options.normalise_levels
                for key, vals in (("cams", cams), ("stations", st), ("log", logs),
                                  ("shape", shapes), ("detail", details)):
                    by_level = levels and key in ("cams", "log")
                    if not vals:
                        v = np.float64(np.nan)
                    elif by_level:  # (Z,) variances
                        v = np.nanvar(np.concatenate(vals, axis=-1), axis=-1)
                    else:
                        v = np.nanvar(np.concatenate([np.ravel(a) for a in vals]))
                    v = np.where(np.isfinite(v) & (v > 0), v, 1.0)
                    self._scales[key] = v.tolist() if by_level else float(v)
                log.info("phase %d: loss scales (target variances) %s", self.phase, self._scales)
        return self._scales

    def train_mode(self, model: nn.Module) -> None:
        """Training mode for an epoch; with ``phase3_eval_layers`` phase 3 keeps its batch
        norms and dropouts in inference mode, as its frozen phase-2 anchor runs."""
        model.train()
        if self.phase == 3 and self.options.phase3_eval_layers:
            for m in model.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm | nn.Dropout):
                    m.eval()

    def val_loss(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """The same terms as the training loss (the paper's validation metric)."""
        return self.loss(model, batch)

    def frozen_predictions(self, batch: dict[str, Tensor]) -> Tensor:
        """Phase 3: the frozen phase-2 model's ``(B, Z, P, P)`` prediction of the batch."""
        dev = batch["emis"].device
        if self._frozen is None or next(self._frozen.parameters()).device != dev:
            frozen = DACNO2(self.config)
            frozen.load_state_dict(copy.deepcopy(self.predecessor.state))
            for p in frozen.parameters():
                p.requires_grad_(False)
            self._frozen = frozen.to(dev).eval()
        with torch.no_grad():
            return self._frozen(**{k: batch[k] for k in INPUT_KEYS}).detach()

    def metadata(self) -> dict:
        """JSON-able facts for the checkpoints: everything generation needs."""
        p = self.prepared
        data = p.metadata()
        meta = {
            "model": MODEL_NAME, "preset": self.preset, "config": self.config.to_dict(),
            "phase": self.phase, "variant": p.spec.variant, "spec": p.spec.to_dict(),
            "levels_m": list(p.spec.levels_m), "grid": data["grid"], "stats": data["stats"],
            "ratios": data["ratios"], "base_lr": self.base_lr,
            "loss": dataclasses.asdict(self.options), "loss_scales": self.loss_scales(),
            "days": {"train": [d.isoformat() for d in self.train_days],
                     "val": sorted(d.isoformat() for d in self.val_days),
                     "test_year": data["split"].get("test_year")},
            "stations": {"train_cells": len(p.train_cells), "eval_cells": len(p.eval_cells),
                         "fit_cells": len(self.fit_cells),
                         "val_cells": ("same" if np.array_equal(self.val_cells, self.fit_cells)
                                       else self.val_cells.tolist())},
            "data": {"catalog": data.get("catalog"), "synthetic": p.synthetic,
                     "prepared": str(p.root)},
        }
        if self.trained_on:
            meta["trained_on"] = self.trained_on
        if self.predecessor is not None:
            meta["predecessor"] = self.predecessor.describe()
            meta["lineage"] = self.predecessor.lineage()
        return meta


def vertical_shape(x: Tensor | np.ndarray, floor: float, axis: int = 1) -> Tensor | np.ndarray:
    """Each level over its column's mean over the levels (``axis``): ``(B, Z, h, w)`` in
    (or ``(Z, h, w)`` with ``axis=0``, a tensor or an array), the same out, dimensionless;
    ``floor`` (the unit of ``x``) keeps an empty column finite."""
    return x / (x.mean(axis=axis, keepdims=True) + floor)
