"""Running a trained DACNO2: load its weights, predict patches, merge them into a field.

A weights file made by ``aprior train`` (``weights.pt``, or a run's ``best.pt``) carries
everything needed to use the network: its configuration, the data spec it was trained
with (variant, levels, patch and stride), the z-score statistics of its inputs and the
layer ratios of its outputs (:meth:`aprior.models.dacno2.phases.PhaseTask.metadata`).
:func:`load_trained` checks them and builds the network; :func:`predict_field` runs it
on one day's patches and returns the Hann-merged field in ug m-3 (layer ratios restored).

The bundled demo (``aprior generate`` without ``--data``/``--weights``) is the synthetic
world ``fixtures/world`` (:func:`default_world`) with the weights
``aprior/models/dacno2/weights/dacno2-s5p-demo.pt`` (:func:`bundled_weights`), trained on
a SYNTHETIC world.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from aprior.errors import ConfigError, InputFileError
from aprior.grids.grid import Grid
from aprior.grids.tiling import PatchTiling
from aprior.models.checkpoint import load_weights, weights_hash
from aprior.models.dacno2.config import DACNO2Config
from aprior.models.dacno2.model import DACNO2, INPUT_KEYS
from aprior.models.dacno2.prepare import DataSpec
from aprior.models.dacno2.targets import LayerRatios
from aprior.models.engine import amp_enabled, resolve_device
from aprior.models.normalisation import ZScoreStats
from aprior.resources import bundled_world

log = logging.getLogger(__name__)

DEMO_WEIGHTS = "dacno2-s5p-demo.pt"
MODEL_NAME = "dacno2"


def bundled_weights() -> Path:
    """The bundled demo weights file; InputFileError if the installation lacks it."""
    path = Path(str(resources.files("aprior.models.dacno2") / "weights" / DEMO_WEIGHTS))
    if not path.is_file():
        raise InputFileError("the bundled DACNO2 demo weights are missing from this "
                             "installation; pass --weights", path)
    return path


def default_world() -> Path:
    """The bundled demo world (:func:`aprior.resources.bundled_world`)."""
    return bundled_world()


def weights_file(source: str | os.PathLike[str]) -> Path:
    """The weights file of ``source``: the file itself, or in a run directory its
    ``weights.pt`` (else ``best.pt``). InputFileError if there is none."""
    p = Path(source)
    if p.is_dir():
        for name in ("weights.pt", "best.pt"):
            if (p / name).is_file():
                return p / name
        raise InputFileError("is a directory without weights.pt or best.pt; is it the run "
                             "directory of a finished 'aprior train'?", p)
    if not p.is_file():
        raise InputFileError("no such weights file or run directory", p)
    return p


@dataclass(frozen=True)
class TrainedModel:
    """A DACNO2 network ready to predict, with what its weights file says about it.

    Attributes:
        model: the network, in eval mode, on ``device``.
        metadata: the weights file's metadata (see the module docstring).
        path: the weights file; ``sha256`` its digest.
        config, spec, stats, ratios: the network's configuration, data spec, input
            statistics and layer ratios.
        device: where the network runs.
    """

    model: DACNO2
    metadata: dict
    path: Path
    sha256: str
    config: DACNO2Config
    spec: DataSpec
    stats: ZScoreStats
    ratios: LayerRatios
    device: torch.device

    @property
    def phase(self) -> int | None:
        return self.metadata.get("phase")

    @property
    def preset(self) -> str:
        return str(self.metadata.get("preset", "custom"))

    @property
    def synthetic(self) -> bool:
        return "SYNTHETIC" in str(self.metadata.get("trained_on", "")).upper()

    @property
    def tiling(self) -> PatchTiling:
        return self.spec.tiling()

    @property
    def levels_m(self) -> np.ndarray:
        return np.asarray(self.spec.levels_m, dtype=np.float64)


def parse_metadata(meta: dict, path: Path) -> tuple[DACNO2Config, DataSpec, ZScoreStats,
                                                      LayerRatios]:
    """The config, spec, statistics and ratios a DACNO2 weights file records.

    Raises:
        InputFileError: the file is not a DACNO2 weights file or lacks one of them.
    """
    if meta.get("model") != MODEL_NAME:
        raise InputFileError(f"holds weights of model {meta.get('model')!r}, not DACNO2", path)
    missing = [k for k in ("config", "spec", "stats", "ratios") if k not in meta]
    if missing:
        raise InputFileError(f"is a DACNO2 weights file without {', '.join(missing)} in its "
                             "metadata; use weights written by 'aprior train'", path)
    try:
        config = DACNO2Config.from_dict(meta["config"])
        spec = DataSpec.from_dict(meta["spec"])
        stats = ZScoreStats.from_dict(meta["stats"])
        ratios = LayerRatios.from_dict(meta["ratios"])
    except (ConfigError, ValueError, TypeError, KeyError) as exc:
        raise InputFileError(f"has invalid DACNO2 metadata ({exc})", path) from exc
    if len(spec.levels_m) != config.n_levels or tuple(ratios.heights_m) != tuple(spec.levels_m):
        raise InputFileError("has inconsistent levels in its metadata (config, spec and layer "
                             "ratios disagree)", path)
    return config, spec, stats, ratios


def load_trained(source: str | os.PathLike[str] | None = None,
                 device: str | torch.device = "auto") -> TrainedModel:
    """Load a DACNO2 weights file (or a run directory's) for prediction.

    Args:
        source: weights file or run directory; None for the bundled demo weights.
        device: "auto", "cpu", "cuda" or "cuda:N".

    Raises:
        InputFileError: missing, unsafe, not DACNO2, or weights not matching the config.
    """
    path = bundled_weights() if source is None else weights_file(source)
    state, meta = load_weights(path)
    config, spec, stats, ratios = parse_metadata(meta, path)
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    model = DACNO2(config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise InputFileError("holds weights that do not fit the DACNO2 network of its own "
                             "configuration (made by another version of the network code?): "
                             f"{first[1].strip()[:120] if len(first) > 1 else first[0][:120]}",
                             path) from exc
    model.to(dev).eval()
    log.info("loaded DACNO2 %s (phase %s, preset %s) on %s", path, meta.get("phase"),
             meta.get("preset"), dev)
    return TrainedModel(model, meta, path, weights_hash(path), config, spec, stats, ratios, dev)


def _autocast(device: torch.device) -> contextlib.AbstractContextManager:
    if amp_enabled("auto", device):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def predict_patches(model: DACNO2, items: Sequence[dict[str, torch.Tensor]], *,
                    device: torch.device | None = None, batch: int = 4) -> np.ndarray:
    """Run the network on patches.

    Args:
        model: the network (its mode is left as it is: put it in eval mode first).
        items: per-patch inputs with the keys of :data:`INPUT_KEYS` (no batch dim), as
            :class:`~aprior.models.dacno2.dataset.PatchDataset` or ``build_inputs`` give.
        device: where to run (default: the model's).
        batch: patches per forward pass.

    Returns:
        ``(n, Z, P, P)`` float32 ratio-scaled ug m-3 (CAMS / layer ratio), >= 0.
    """
    dev = device or next(model.parameters()).device
    out = []
    with torch.no_grad(), _autocast(dev):
        for i in range(0, len(items), batch):
            chunk = items[i:i + batch]
            inputs = {k: torch.stack([it[k] for it in chunk]).to(dev) for k in INPUT_KEYS}
            out.append(model(**inputs).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0,), np.float32)


def merge_field(patches: np.ndarray, tiling: PatchTiling, grid: Grid | tuple[int, int],
                ratios: LayerRatios) -> np.ndarray:
    """Hann-merge patch predictions and restore the layer ratios.

    Args:
        patches: ``(n, Z, P, P)`` ratio-scaled predictions, in the order of
            ``tiling.patches(grid)``.
        tiling: the tiling the patches were cut with.
        grid: the 2 km grid (or its ``(ny, nx)``).
        ratios: the layer ratios of the weights.

    Returns:
        ``(Z, ny, nx)`` float32 ug m-3, >= 0.
    """
    merged = tiling.merge(patches, grid)
    return np.maximum(ratios.invert(merged, axis=0), 0.0).astype(np.float32)


def predict_field(trained: TrainedModel, items: Sequence[dict[str, torch.Tensor]],
                  grid: Grid, *, batch: int = 4) -> np.ndarray:
    """One day's field from its patch inputs: ``(Z, ny, nx)`` float32 ug m-3 on ``grid``."""
    raw = predict_patches(trained.model, items, device=trained.device, batch=batch)
    return merge_field(raw, trained.tiling, grid, trained.ratios)
