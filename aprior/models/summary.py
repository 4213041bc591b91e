"""Model summaries: parameter counts and tensor shapes, for ``aprior models`` and benchmarks.

Each network module exposes ``summary(preset) -> ModelSummary``; :data:`MODEL_SUMMARIES`
names them so the CLI can list every model without importing them all up front.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType

import torch

from aprior.errors import ConfigError

#: model name -> "module:function", the function taking a preset name
MODEL_SUMMARIES: dict[str, str] = {
    "dacno2": "aprior.models.dacno2.model:summary",
    "deepcams-temporal": "aprior.models.deepcams.temporal:summary",
    "deepcams-spatial": "aprior.models.deepcams.spatial:summary",
}


@dataclass(frozen=True)
class ModelSummary:
    """What a network is, at one size.

    Attributes:
        name: model name (a key of :data:`MODEL_SUMMARIES`).
        preset: the size preset.
        n_params: number of trainable parameters.
        parts: trainable parameters per named part (branch, block).
        shapes: ``(what, shape)`` pairs along the forward pass, batch size 1.
    """

    name: str
    preset: str
    n_params: int
    parts: dict[str, int] = field(default_factory=dict)
    shapes: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)

    def render(self) -> str:
        """A plain-text table of the parts and shapes."""
        lines = [f"{self.name} ({self.preset}): {self.n_params:,} parameters"]
        if self.parts:
            width = max(len(k) for k in self.parts)
            lines.append("  parameters per part:")
            lines += [f"    {k:<{width}}  {v:>12,}" for k, v in self.parts.items()]
        if self.shapes:
            width = max(len(k) for k, _ in self.shapes)
            lines.append("  tensor shapes (batch 1):")
            lines += [f"    {k:<{width}}  {tuple(s)}" for k, s in self.shapes]
        return "\n".join(lines)


def count_parameters(module: torch.nn.Module) -> int:
    """Number of trainable parameters of ``module``."""
    return int(sum(p.numel() for p in module.parameters() if p.requires_grad))


def _summary_module(name: str) -> tuple[ModuleType, str]:
    """The module holding model ``name``'s summary function, and that function's name."""
    if name not in MODEL_SUMMARIES:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(MODEL_SUMMARIES)}")
    module, func = MODEL_SUMMARIES[name].split(":")
    return importlib.import_module(module), func


def get_summary(name: str, preset: str) -> ModelSummary:
    """The summary of model ``name`` at ``preset``; ConfigError for an unknown name."""
    module, func = _summary_module(name)
    return getattr(module, func)(preset)


def model_presets(name: str) -> tuple[str, ...]:
    """The size presets of model ``name``, in its module's ``PRESETS`` order."""
    module, _ = _summary_module(name)
    return tuple(module.PRESETS)
