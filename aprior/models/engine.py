"""The model-agnostic trainer behind DACNO2's three phases and DeepCAMS's two stages.

A :class:`TrainTask` says what to train (model, datasets, losses, metadata); :func:`train`
does the rest: AdamW, an optional cosine schedule, gradient accumulation up to the
effective batch, gradient clipping, bf16 autocast on CUDA, validation after every epoch,
the best/last checkpoints, the weights file users share, ``metrics.jsonl``, early
stopping, exact resume, and data parallelism under ``torchrun``.

Files in a run directory (all written atomically, by rank 0 only):

* ``last.pt``: checkpoint after the latest epoch (what ``resume`` continues from);
* ``best.pt``: checkpoint of the epoch with the lowest validation loss;
* ``weights.pt``: the best weights and metadata only (:func:`checkpoint.save_weights`);
* ``metrics.jsonl``: one JSON object per epoch.

Exact resume: the data order of epoch ``e`` comes from a generator seeded by
``(seed, e)``, and every global random state is saved with the optimizer at the end of
each epoch, so a run killed after epoch ``k`` and resumed ends with the same weights,
bit for bit on the CPU, as one that was never interrupted.

Under ``torchrun`` (``WORLD_SIZE > 1``) each process trains on its shard of every epoch
(DistributedSampler) with DistributedDataParallel; the process group is created on the
first call and kept until the process exits, so one job may train several phases.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler

from aprior.errors import AprioriError, ConfigError
from aprior.models import distributed as dist_
from aprior.models.checkpoint import (
    check_run_dir,
    dumps_metadata,
    epoch_generator,
    load_checkpoint,
    load_weights,
    rng_state,
    save_checkpoint,
    save_weights,
    seed_everything,
    set_rng_state,
    weights_hash,
    write_metrics,
)
from aprior.models.distributed import amp_enabled, batch_len, resolve_device, to_device
from aprior.models.settings import FREE_ON_RESUME, TrainSettings, run_budget

logger = logging.getLogger(__name__)

__all__ = [  # the checkpoint and device helpers are re-exported: callers may import them from here
    "TrainResult", "TrainSettings", "TrainTask", "TrainingDiverged", "amp_enabled", "check_run_dir",
    "load_checkpoint",
    "load_weights", "resolve_device", "save_weights", "train", "weights_hash",
]

class TrainingDiverged(AprioriError):
    """The loss became NaN or infinite."""


@runtime_checkable
class TrainTask(Protocol):
    """What to train. ``loss`` and ``val_loss`` get the batch already on the device.

    During training ``model`` may be a DistributedDataParallel wrapper: call it, and reach
    its attributes through :func:`aprior.models.distributed.unwrap`.

    A task may also define ``train_mode(model)``, called instead of ``model.train()`` at the
    start of every training epoch (for example to keep some layers in inference mode).
    """

    name: str

    def build_model(self) -> nn.Module: ...
    def train_dataset(self) -> Dataset: ...
    def val_dataset(self) -> Dataset: ...
    def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]: ...
    def val_loss(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]: ...
    def metadata(self) -> dict: ...
    def initial_state(self) -> dict[str, Tensor] | None: ...


@dataclass(frozen=True)
class TrainResult:
    """Where a training run left its files and how it went (epochs counted from 1)."""

    run_dir: Path
    best_path: Path
    last_path: Path
    weights_path: Path
    best_epoch: int
    best_val: float
    epochs_run: int
    metrics_path: Path
    samples_per_second: float


def train(task: TrainTask, settings: TrainSettings, run_dir: Path, *, resume: bool = False,
          progress: Callable[[dict], None] | None = None, command: str | None = None) -> TrainResult:
    """Train ``task`` with ``settings``, writing to ``run_dir``; see the module docstring.

    The weights file's metadata records ``training``: the best epoch, the settings, the
    ``command`` that ran it (when given) and, once the run ends, its ``budget`` (epochs,
    samples, wall and training seconds over every invocation, resumed ones included) and why
    it stopped (``converged``, ``patience``, ``time limit`` or ``epochs``).

    ``progress`` (rank 0 only) gets, after every micro-batch,
    ``{"event": "step", "epoch", "epochs", "step", "steps", "loss"}`` (``loss`` the running
    mean of the epoch), and after every epoch ``{"event": "epoch", "epoch", "epochs",
    "train_loss", "val_loss", "best", "lr", "seconds", "samples_per_second"}``.

    Raises:
        OutputExistsError: ``run_dir`` is not empty and ``resume`` is False.
        ConfigError: ``resume`` without ``last.pt``, or a checkpoint of another task/model.
        TrainingDiverged: a loss became NaN or infinite.
    """
    run_dir = Path(run_dir)
    info = dist_.env_info()
    device = resolve_device(settings.device)
    check_run_dir(run_dir, resume)
    device = dist_.init(info, device)  # the process group lives until the process exits
    run = _Run(task, settings, run_dir, info, device, progress, command)
    try:
        return run.run(resume)
    finally:
        del run
        dist_.release(info)


def weights_metadata(task_meta: dict, task_name: str, settings: TrainSettings, best_epoch: int,
                     best_val: float, epochs: int, world_size: int, command: str | None = None,
                     budget: dict | None = None) -> dict:
    """The metadata of checkpoints and the weights file: the task's, plus how it was trained."""
    training = {"best_epoch": best_epoch, "best_val": best_val, "epochs": epochs,
                "world_size": world_size, "settings": dataclasses.asdict(settings)}
    if command is not None:
        training["command"] = command
    if budget is not None:
        training["budget"] = budget
    return {**task_meta, "task": task_name, "training": training}


def _load_state(model: nn.Module, state: dict[str, Tensor], what: str, task: str, path: Path | None) -> None:
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = str(exc).strip().splitlines()
        raise ConfigError(f"{what} do not match the model of task {task} "
                          f"({detail[1].strip() if len(detail) > 1 else detail[0][:160]})", path) from exc


class _Run:
    """One training invocation, in one process."""

    def __init__(self, task: TrainTask, settings: TrainSettings, run_dir: Path, info: dist_.DistInfo,
                 device: torch.device, progress: Callable[[dict], None] | None,
                 command: str | None = None) -> None:
        self.task, self.s, self.run_dir, self.info, self.device = task, settings, run_dir, info, device
        self.command = command
        self.progress = progress if info.is_main else None
        self.amp = amp_enabled(settings.amp, device)
        self.accum = settings.accumulation(info.world_size)
        self.paths = {k: run_dir / f"{k}.pt" for k in ("best", "last", "weights")}
        self.metrics_path = run_dir / "metrics.jsonl"

    # ---------------------------------------------------------------- set-up

    def _setup(self, resume: bool) -> None:
        s, task, info = self.s, self.task, self.info
        seed_everything(s.seed)
        self.train_ds, self.val_ds = task.train_dataset(), task.val_dataset()
        for what, ds in (("training", self.train_ds), ("validation", self.val_ds)):
            if len(ds) == 0:
                raise ConfigError(f"the {what} set of task {task.name} is empty; check the data and the split")
        model = task.build_model()
        self.task_meta = task.metadata()
        dumps_metadata(self.task_meta)  # not JSON-able: fail now, not after the first epoch
        ckpt = None
        if resume:
            ckpt = load_checkpoint(self.paths["last"])
            self._check_compatible(ckpt)
            _load_state(model, ckpt["model"], "the weights in last.pt", task.name, self.paths["last"])
        else:
            init = task.initial_state()
            if init is not None:
                _load_state(model, init, "the initial weights", task.name, None)
        model.to(self.device)
        self.model = dist_.wrap(model, info, self.device)
        self.opt = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
        self.start, self.best_val, self.best_epoch, self.bad = 0, math.inf, 0, 0
        self.lr_scale, self.plateau_bad, self.reductions = 1.0, 0, 0  # the "plateau" schedule's state
        self.history: list[dict] = []
        if ckpt is not None:
            self.opt.load_state_dict(ckpt["optimizer"])
            self.start = int(ckpt["epoch"])
            self.best_val, self.best_epoch = float(ckpt["best_val"]), int(ckpt["best_epoch"])
            self.bad = int(ckpt.get("bad_epochs", 0))
            self.lr_scale = float(ckpt.get("lr_scale", 1.0))
            self.plateau_bad = int(ckpt.get("plateau_bad", 0))
            self.reductions = int(ckpt.get("plateau_reductions", 0))
            self.history = json.loads(ckpt.get("history", "[]"))[: self.start]
            states = list(ckpt["rng"])
            if len(states) == info.world_size:
                set_rng_state(states[info.rank])
            else:
                logger.warning("last.pt was written by %d process(es), this run has %d: random states are "
                               "re-seeded, so the run will not be bit-identical", len(states), info.world_size)
                seed_everything(s.seed + 7919 * info.rank + 104729 * self.start)
            logger.info("resuming %s from epoch %d in %s", task.name, self.start, self.run_dir)
        elif info.rank > 0:
            seed_everything(s.seed + 7919 * info.rank)  # different dropout masks on each rank
        if not info.is_main:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        logger.info("training %s on %s (%d process(es)), %d x %d micro-batch(es) of %d per step, amp %s",
                    task.name, self.device, info.world_size, info.world_size, self.accum,
                    s.micro_batch, "bf16" if self.amp else "off")

    def _check_compatible(self, ckpt: dict) -> None:
        if ckpt.get("task") != self.task.name:
            raise ConfigError(f"last.pt belongs to task {ckpt.get('task')!r}, not {self.task.name!r}; "
                              "resume it with the same task", self.paths["last"])
        old = json.loads(ckpt.get("settings", "{}"))
        new = dataclasses.asdict(self.s)
        changed = sorted(k for k in new if k not in FREE_ON_RESUME and k in old and old[k] != new[k])
        if changed:
            logger.warning("settings changed since the run started (%s): the resumed run will differ "
                           "from an uninterrupted one", ", ".join(changed))

    def _autocast(self) -> torch.autocast:
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.amp)

    def _loader(self, ds: Dataset, sampler: torch.utils.data.Sampler, epoch: int) -> DataLoader:
        return DataLoader(ds, batch_size=self.s.micro_batch, sampler=sampler, num_workers=self.s.num_workers,
                          pin_memory=self.device.type == "cuda", generator=epoch_generator(self.s.seed, epoch, 1))

    # ---------------------------------------------------------------- epochs

    def run(self, resume: bool) -> TrainResult:
        self._setup(resume)
        s = self.s
        samples, seconds = 0, 0.0
        done = self.start
        if self.start >= s.epochs:
            logger.info("the run in %s already has %d epochs; nothing to do", self.run_dir, self.start)
        stopped = "epochs"
        t_start, last_epoch_s = time.perf_counter(), 0.0
        for epoch in range(self.start, s.epochs):
            if (s.time_limit_s is not None and last_epoch_s > 0
                    and time.perf_counter() - t_start + last_epoch_s > s.time_limit_s):
                logger.info("time limit: another epoch would end after %.0f s", s.time_limit_s)
                stopped = "time limit"
                break
            if s.patience is not None and self.bad >= s.patience:
                logger.info("early stop: no better validation loss in %d epochs", self.bad)
                stopped = "patience"
                break
            if s.lr_schedule == "plateau" and self.reductions > s.plateau_reductions:
                logger.info("converged: the validation loss stalled after %d learning-rate reductions",
                            s.plateau_reductions)
                stopped = "converged"
                break
            t0 = time.perf_counter()
            train_loss, train_parts, n, lr = self._train_epoch(epoch)
            t_train = time.perf_counter() - t0
            val_loss, val_parts = self._validate()
            samples, seconds = samples + n, seconds + t_train
            self._end_epoch(epoch, {
                "epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss,
                "train_parts": train_parts, "val_parts": val_parts, "lr": lr,
                "seconds": time.perf_counter() - t0, "train_seconds": t_train, "samples": n,
                "samples_per_second": n / t_train if t_train > 0 else 0.0})
            done = epoch + 1
            last_epoch_s = time.perf_counter() - t0
        else:
            if s.lr_schedule == "plateau" and self.reductions > s.plateau_reductions:
                stopped = "converged"
            elif s.patience is not None and self.bad >= s.patience:
                stopped = "patience"
        if self.info.is_main and self.paths["weights"].is_file():
            self._record_budget(stopped)
        dist_.barrier(self.info)  # every rank returns only once rank 0's files are written
        return TrainResult(self.run_dir, self.paths["best"], self.paths["last"], self.paths["weights"],
                           self.best_epoch, self.best_val, done, self.metrics_path,
                           samples / seconds if seconds > 0 else 0.0)

    def _record_budget(self, stopped: str) -> None:
        """Write the whole run's budget and stop reason into weights.pt's metadata."""
        state, meta = load_weights(self.paths["weights"])
        training = dict(meta.get("training", {}))
        training["budget"] = run_budget(self.history, stopped)
        if self.command is not None:
            training.setdefault("command", self.command)
        save_weights(self.paths["weights"], state, {**meta, "training": training})

    def _train_epoch(self, epoch: int) -> tuple[float, dict[str, float], int, float]:
        s, info, model = self.s, self.info, self.model
        if info.enabled:
            sampler = DistributedSampler(self.train_ds, num_replicas=info.world_size, rank=info.rank,
                                         shuffle=True, seed=s.seed, drop_last=False)
            sampler.set_epoch(epoch)
        else:
            sampler = RandomSampler(self.train_ds, generator=epoch_generator(s.seed, epoch))
        loader = self._loader(self.train_ds, sampler, epoch)
        n_local = len(sampler)
        n_micro = len(loader) if s.max_batches is None else min(len(loader), s.max_batches)
        sizes = [min(s.micro_batch, n_local - i * s.micro_batch) for i in range(n_micro)]
        n_opt = math.ceil(n_micro / self.accum)
        set_mode = getattr(self.task, "train_mode", None)
        if callable(set_mode):
            set_mode(model)
        else:
            model.train()
        self.opt.zero_grad(set_to_none=True)
        loss_sum, n_sum, parts_sum = 0.0, 0, {}
        lr, group_n, last = s.lr, 1, 0
        for i, batch in zip(range(n_micro), loader, strict=False):
            group, j = divmod(i, self.accum)
            if j == 0:  # the first micro-batch of an optimizer step
                last = min(i + self.accum, n_micro) - 1
                group_n = sum(sizes[i : last + 1])
                lr = (s.lr * self.lr_scale if s.lr_schedule == "plateau"
                      else s.lr_at((epoch + group / n_opt) / s.epochs))
                for pg in self.opt.param_groups:
                    pg["lr"] = lr
            batch = to_device(batch, self.device)
            with dist_.no_sync(model, i != last):
                with self._autocast():
                    loss, parts = self.task.loss(model, batch)
                (loss.float() * (sizes[i] / group_n)).backward()
            value = float(loss.detach())
            if not math.isfinite(value):
                raise TrainingDiverged(f"training diverged: the loss is {value} at epoch {epoch + 1}, "
                                       f"micro-batch {i + 1}; lower the learning rate or check the inputs",
                                       self.run_dir)
            loss_sum, n_sum = loss_sum + value * sizes[i], n_sum + sizes[i]
            for k, v in parts.items():
                parts_sum[k] = parts_sum.get(k, 0.0) + float(v) * sizes[i]
            if i == last:
                if s.grad_clip is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), s.grad_clip)
                self.opt.step()
                self.opt.zero_grad(set_to_none=True)
            if self.progress is not None:
                self.progress({"event": "step", "epoch": epoch + 1, "epochs": s.epochs, "step": i + 1,
                               "steps": n_micro, "loss": loss_sum / n_sum})
        mean, parts_mean, n = self._reduce(loss_sum, n_sum, parts_sum)
        return mean, parts_mean, n, lr

    def _validate(self) -> tuple[float, dict[str, float]]:
        s = self.s
        model = dist_.unwrap(self.model)
        model.eval()
        loader = self._loader(self.val_ds, dist_.ShardSampler(len(self.val_ds), self.info), 0)
        loss_sum, n_sum, parts_sum = 0.0, 0, {}
        with torch.no_grad():
            for i, batch in enumerate(loader):
                if s.max_batches is not None and i >= s.max_batches:
                    break
                n = batch_len(batch)
                with self._autocast():
                    loss, parts = self.task.val_loss(model, to_device(batch, self.device))
                loss_sum, n_sum = loss_sum + float(loss) * n, n_sum + n
                for k, v in parts.items():
                    parts_sum[k] = parts_sum.get(k, 0.0) + float(v) * n
        mean, parts_mean, _ = self._reduce(loss_sum, n_sum, parts_sum)
        if not math.isfinite(mean):
            raise TrainingDiverged(f"the validation loss is {mean}; lower the learning rate or check "
                                   "the validation data", self.run_dir)
        return mean, parts_mean

    def _reduce(self, loss_sum: float, n_sum: int, parts_sum: dict[str, float]) -> tuple[float, dict[str, float], int]:
        """Sample-weighted means over all ranks.

        The names of the loss parts are agreed first: a rank that saw no batch (fewer
        validation samples than processes) has none, and a sum over vectors of different
        lengths would hang the job.
        """
        keys = sorted(set().union(*dist_.gather_objects(sorted(parts_sum), self.info)))
        tot = dist_.all_reduce_sum([loss_sum, n_sum, *(parts_sum.get(k, 0.0) for k in keys)],
                                   self.info, self.device)
        n = max(tot[1], 1.0)
        return tot[0] / n, {k: v / n for k, v in zip(keys, tot[2:], strict=True)}, int(tot[1])

    def _end_epoch(self, epoch: int, record: dict) -> None:
        s, task = self.s, self.task
        is_best = record["val_loss"] < self.best_val
        if is_best:
            self.best_val, self.best_epoch, self.bad = record["val_loss"], epoch + 1, 0
        else:
            self.bad += 1
        record["best"] = is_best
        if s.lr_schedule == "plateau":
            self.plateau_bad = 0 if is_best else self.plateau_bad + 1
            if self.plateau_bad >= s.plateau_epochs:
                self.reductions += 1
                self.plateau_bad = 0
                if self.reductions <= s.plateau_reductions:
                    self.lr_scale *= s.plateau_factor
                    logger.info("validation plateau: learning rate now %.3g", s.lr * self.lr_scale)
            record["converged"] = self.reductions > s.plateau_reductions
        self.history.append(record)
        states = dist_.gather_objects(rng_state(), self.info)
        if not self.info.is_main:
            return
        logger.info("epoch %d/%d: train %.6g, val %.6g%s (%.1f s, %.3g samples/s)", epoch + 1, s.epochs,
                    record["train_loss"], record["val_loss"], " (best)" if is_best else "",
                    record["seconds"], record["samples_per_second"])
        meta = weights_metadata(self.task_meta, task.name, s, self.best_epoch, self.best_val, epoch + 1,
                                self.info.world_size, self.command, run_budget(self.history))
        state = dist_.unwrap(self.model).state_dict()
        ckpt = {"model": state, "optimizer": self.opt.state_dict(), "epoch": epoch + 1,
                "best_val": self.best_val, "best_epoch": self.best_epoch, "bad_epochs": self.bad,
                "lr_scale": self.lr_scale, "plateau_bad": self.plateau_bad,
                "plateau_reductions": self.reductions,
                "rng": states, "task": task.name, "world_size": self.info.world_size,
                "settings": json.dumps(dataclasses.asdict(s)), "history": json.dumps(self.history),
                "metadata": dumps_metadata(meta)}
        if is_best:  # best first, last.pt last: a crash in between only repeats this epoch
            save_checkpoint(self.paths["best"], ckpt)
            save_weights(self.paths["weights"], state, meta)
        write_metrics(self.metrics_path, self.history)
        save_checkpoint(self.paths["last"], ckpt)
        if self.progress is not None:
            self.progress({"event": "epoch", "epoch": epoch + 1, "epochs": s.epochs,
                           "train_loss": record["train_loss"], "val_loss": record["val_loss"],
                           "best": is_best, "lr": record["lr"], "seconds": record["seconds"],
                           "samples_per_second": record["samples_per_second"]})
