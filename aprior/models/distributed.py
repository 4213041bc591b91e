"""Devices, and data-parallel training across processes started by ``torchrun``.

The trainer runs in one process unless ``torchrun`` set ``WORLD_SIZE > 1`` in the
environment; then every process joins a process group (NCCL on CUDA, gloo on the CPU),
drives one device (``cuda:LOCAL_RANK``), sees its own shard of the data, and the gradients
are averaged by :class:`~torch.nn.parallel.DistributedDataParallel`. Only rank 0 writes.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import gc
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from aprior.errors import ConfigError

logger = logging.getLogger(__name__)


def resolve_device(spec: str) -> torch.device:
    """The device for ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``."""
    s = str(spec).strip().lower()
    if s == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if s == "cpu":
        return torch.device("cpu")
    if s == "cuda" or s.startswith("cuda:"):
        try:
            dev = torch.device(s)
        except RuntimeError as exc:
            raise ConfigError(f"cannot parse device {spec!r}; use auto, cpu, cuda or cuda:N") from exc
        if not torch.cuda.is_available():
            raise ConfigError(f"device {spec!r} was asked for but no CUDA device is available; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device {spec!r} does not exist; this machine has {torch.cuda.device_count()} CUDA device(s)")
        return dev
    raise ConfigError(f"unknown device {spec!r}; use auto, cpu, cuda or cuda:N")


def amp_enabled(mode: str, device: torch.device) -> bool:
    """Whether bf16 autocast is on for ``mode`` ("auto" | "bf16" | "off") on ``device``."""
    if mode == "off":
        return False
    cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    if mode == "auto":
        return cuda_bf16
    if device.type == "cuda" and not cuda_bf16:
        raise ConfigError(f"amp 'bf16' was asked for but {device} does not support bfloat16; use amp 'off'")
    return True


def to_device(batch: Any, device: torch.device) -> Any:
    """``batch`` (tensors in dicts, lists, tuples) with every tensor moved to ``device``."""
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def batch_len(batch: Any) -> int:
    """Number of samples in a collated batch (the first dim of its first tensor)."""
    values = batch.values() if isinstance(batch, dict) else batch if isinstance(batch, (list, tuple)) else [batch]
    for v in values:
        if isinstance(v, Tensor) and v.dim() > 0:
            return int(v.shape[0])
    raise TypeError("a batch must hold at least one tensor with a batch dimension")


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in the job (``world_size == 1``: a single process)."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_info() -> DistInfo:
    """The job layout ``torchrun`` put in the environment (a single process if none)."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return DistInfo()
    return DistInfo(world, int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")))


def init(info: DistInfo, device: torch.device) -> torch.device:
    """Join the process group for ``info`` and return the device this rank drives.

    On CUDA each rank takes ``cuda:LOCAL_RANK`` and uses NCCL; on the CPU gloo. The group
    lives as long as the process (it is destroyed at exit), so several trainings in one
    ``torchrun`` job (DACNO2's phases) share it instead of racing to rebuild it. A group
    that is already initialised (by the caller) is reused and left to the caller.
    """
    if not info.enabled:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
        atexit.register(cleanup, info)
        logger.info("rank %d of %d joined the %s process group", info.rank, info.world_size, backend)
    return device


def release(info: DistInfo) -> None:
    """Collect the garbage a finished training left while the process group and the
    interpreter are still fully up (a no-op in a single process).

    Garbage in reference cycles is otherwise freed during interpreter finalisation, after the
    group is gone. If it holds gloo work (tensors with Python references), gloo aborts the
    process there (``terminate called without an active exception``; pytorch/pytorch#179291
    describes the mechanism). A guard: no such cycle is known in our trainer.
    """
    if info.enabled:
        gc.collect()


def cleanup(info: DistInfo, timeout_s: float = 120.0) -> None:
    """Leave the process group (if the job is distributed and the group is up).

    The ranks leave in order: all meet at a barrier, the other ranks destroy their group and
    say so through the rendezvous store, and rank 0, which hosts that store, destroys its own
    and exits last. Otherwise rank 0 could exit while another rank's gloo threads still talk
    to it, and that rank would die in C++ (``terminate called without an active exception``,
    SIGABRT) after its work was done.
    """
    if not (info.enabled and dist.is_initialized()):
        return
    release(info)
    try:
        store = dist.distributed_c10d._get_default_store()
        dist.barrier()
        if not info.is_main:
            dist.destroy_process_group()
            store.set(f"aprior/left/{info.rank}", "1")
            return
        store.wait([f"aprior/left/{r}" for r in range(1, info.world_size)],
                   datetime.timedelta(seconds=timeout_s))
    except Exception as exc:  # a rank already gone (it failed): leave anyway, never hang at exit
        logger.warning("rank %d left the process group without the others: %s", info.rank, exc)
    if dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: nn.Module, info: DistInfo, device: torch.device) -> nn.Module:
    """``model`` in DistributedDataParallel when distributed, else ``model`` itself."""
    if not info.enabled:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside a DistributedDataParallel wrapper."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


@contextlib.contextmanager
def no_sync(model: nn.Module, skip: bool) -> Iterator[None]:
    """Skip DDP's gradient all-reduce for this backward when ``skip`` (accumulation steps)."""
    if skip and isinstance(model, nn.parallel.DistributedDataParallel):
        with model.no_sync():
            yield
    else:
        yield


def barrier(info: DistInfo) -> None:
    """Wait for every rank (no-op in a single process)."""
    if info.enabled:
        dist.barrier()


def all_reduce_sum(values: Sequence[float], info: DistInfo, device: torch.device) -> list[float]:
    """Sum ``values`` over all ranks (float64); returns them unchanged in a single process."""
    if not info.enabled:
        return [float(v) for v in values]
    t = torch.tensor(list(values), dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def gather_objects(obj: object, info: DistInfo) -> list:
    """``obj`` from every rank, in rank order (``[obj]`` in a single process)."""
    if not info.enabled:
        return [obj]
    out: list = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: object, info: DistInfo) -> object:
    """Rank 0's ``obj`` on every rank."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class ShardSampler(torch.utils.data.Sampler[int]):
    """Indices ``rank, rank + world, ...`` of a dataset in order, without padding (validation)."""

    def __init__(self, n: int, info: DistInfo) -> None:
        self.indices = list(range(info.rank, n, info.world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)
