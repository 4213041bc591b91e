"""Safe saving and loading of weights files and training checkpoints.

Two file kinds, both ``torch.save`` of plain dicts (tensors, numbers, strings, lists) and
always read back with ``torch.load(weights_only=True)``, so opening a file never runs code:

* a weights file (``weights.pt``, what users share and generation loads)::

      {"format": "aprior-weights", "state_dict": {name: Tensor}, "metadata": "<JSON>"}

* a checkpoint (``last.pt``, ``best.pt``, what ``--resume`` reads)::

      {"format": "aprior-checkpoint", "model": {name: Tensor}, "optimizer": {...},
       "epoch": int (epochs done), "best_val": float, "best_epoch": int, "bad_epochs": int,
       "rng": [per-rank rng_state()], "task": str, "world_size": int,
       "settings": "<JSON>", "history": "<JSON list of metrics records>", "metadata": "<JSON>"}

The metadata JSON always holds ``"format": "aprior-weights"``, ``"aprior_version"`` and
``"created"`` (UTC, ISO 8601), plus what the task gives (model, preset, config, ...).
The RNG helpers here capture and restore every random state a run depends on, in forms
that ``weights_only`` loading accepts (no numpy arrays).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import random
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from aprior import __version__
from aprior._io import atomic_path
from aprior.errors import ConfigError, InputFileError, OutputExistsError

logger = logging.getLogger(__name__)

WEIGHTS_FORMAT = "aprior-weights"
CHECKPOINT_FORMAT = "aprior-checkpoint"


def to_jsonable(obj: Any) -> Any:
    """``obj`` made JSON-able: dataclasses, paths, numpy scalars/arrays, tuples, sets, dates."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (np.generic, np.ndarray)):
        return obj.tolist()
    if isinstance(obj, Tensor):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    return obj


def dumps_metadata(metadata: dict) -> str:
    """The JSON string of ``metadata`` with the format, version and creation time set."""
    meta = dict(to_jsonable(metadata))
    meta["format"] = WEIGHTS_FORMAT
    meta["aprior_version"] = __version__
    meta["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return json.dumps(meta, sort_keys=False)


def cpu_state(obj: Any) -> Any:
    """A copy of a (nested) state dict with every tensor detached and on the CPU."""
    if isinstance(obj, Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, dict):
        return {k: cpu_state(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(cpu_state(v) for v in obj)
    return obj


def save_weights(path: str | os.PathLike[str], state_dict: dict[str, Tensor], metadata: dict) -> Path:
    """Write a weights file atomically.

    Args:
        path: target file (``.pt``).
        state_dict: the model's parameters and buffers (moved to the CPU here).
        metadata: JSON-able facts about the model (``model``, ``preset``, ``config``, ...).

    Returns:
        ``path`` as a Path.
    """
    path = Path(path)
    obj = {"format": WEIGHTS_FORMAT, "state_dict": cpu_state(dict(state_dict)),
           "metadata": dumps_metadata(metadata)}
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return path


def save_checkpoint(path: str | os.PathLike[str], checkpoint: dict) -> Path:
    """Write a training checkpoint atomically (see the module docstring for its keys)."""
    path = Path(path)
    obj = {**checkpoint, "format": CHECKPOINT_FORMAT}
    with atomic_path(path) as tmp:
        torch.save(cpu_state(obj), tmp)
    return path


def _load(path: str | os.PathLike[str]) -> dict:
    p = Path(path)
    if not p.is_file():
        raise InputFileError("the file does not exist", p)
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickles we refuse anyway
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors, truncated zips, foreign formats
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputFileError(f"is not an aprior weights file and cannot be read safely ({first[:160]})", p) from exc
    if not isinstance(obj, dict) or obj.get("format") not in (WEIGHTS_FORMAT, CHECKPOINT_FORMAT):
        raise InputFileError("is not an aprior weights file (no aprior format marker); "
                             "weights must come from 'aprior train'", p)
    if not isinstance(obj.get("metadata"), str):
        raise InputFileError("is not an aprior weights file (its metadata is missing)", p)
    try:
        meta = json.loads(obj["metadata"])
    except json.JSONDecodeError as exc:
        raise InputFileError("is a damaged aprior weights file (its metadata is not valid JSON)", p) from exc
    if not isinstance(meta, dict):
        raise InputFileError("is a damaged aprior weights file (its metadata is not a mapping)", p)
    obj["metadata"] = meta
    return obj


def load_weights(path: str | os.PathLike[str]) -> tuple[dict[str, Tensor], dict]:
    """Read a weights file (or a checkpoint's model weights) safely.

    Returns:
        ``(state_dict, metadata)``, tensors on the CPU.

    Raises:
        InputFileError: the file is missing, is not ours, or cannot be loaded safely.
    """
    obj = _load(path)
    key = "state_dict" if obj["format"] == WEIGHTS_FORMAT else "model"
    state = obj.get(key)
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise InputFileError("is a damaged aprior weights file (no tensors in it)", Path(path))
    return state, obj["metadata"]


def load_checkpoint(path: str | os.PathLike[str]) -> dict:
    """Read a training checkpoint safely; ``"metadata"`` comes back parsed into a dict.

    Raises:
        InputFileError: the file is missing, is not an aprior checkpoint, or cannot be loaded.
    """
    obj = _load(path)
    if obj["format"] != CHECKPOINT_FORMAT:
        raise InputFileError("is an aprior weights file, not a training checkpoint; "
                             "resume needs the run directory's last.pt", Path(path))
    missing = [k for k in ("model", "optimizer", "epoch", "rng") if k not in obj]
    if missing:
        raise InputFileError(f"is a damaged aprior checkpoint (missing {', '.join(missing)})", Path(path))
    return obj


def check_run_dir(run_dir: Path, resume: bool) -> None:
    """Refuse a non-empty directory for a new run, and a resume without ``last.pt``."""
    if resume:
        if not (run_dir / "last.pt").is_file():
            raise ConfigError("there is no last.pt to resume from in this run directory; "
                              "start a new run without --resume", run_dir)
    elif run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise OutputExistsError("the run directory is not empty; pass --resume to continue "
                                "the run in it, or choose a new directory", run_dir)


def write_metrics(path: Path, history: list[dict]) -> None:
    """Rewrite ``metrics.jsonl`` atomically from the per-epoch records."""
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in history), encoding="utf-8")


def weights_hash(path: str | os.PathLike[str]) -> str:
    """The SHA-256 hex digest of a file, for provenance records."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------- random states


def seed_everything(seed: int) -> None:
    """Seed python ``random``, numpy's global generator and torch (CPU and all CUDA devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_generator(seed: int, epoch: int, stream: int = 0) -> torch.Generator:
    """A CPU generator seeded from ``(seed, epoch, stream)``: the data order of one epoch."""
    g = torch.Generator()
    g.manual_seed(int(np.random.SeedSequence([seed, epoch, stream]).generate_state(1, np.uint64)[0] >> 1))
    return g


def rng_state() -> dict:
    """Every global random state, as tensors, ints, floats and lists (``weights_only``-safe)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": str(name), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": int(version), "state": torch.tensor(internal, dtype=torch.int64),
                   "gauss_next": gauss_next},
    }
    if torch.cuda.is_available():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def set_rng_state(state: dict) -> None:
    """Restore the states captured by :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss_next"]))
    cuda = state.get("cuda")
    if cuda and torch.cuda.is_available():
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        else:
            logger.warning("the checkpoint holds %d CUDA random states for %d devices; CUDA random "
                           "states are not restored, so the run will not be bit-identical",
                           len(cuda), torch.cuda.device_count())
