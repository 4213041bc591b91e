"""Configuration of the DeepCAMS temporal network (:mod:`aprior.models.deepcams.temporal`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from aprior.errors import ConfigError
from aprior.models.deepcams.flow import REVERSALS


@dataclass(frozen=True)
class TemporalConfig:
    """Sizes of the XVFI-style temporal network; the defaults are the paper preset.

    Attributes:
        in_channels: channels of a frame (1: PM2.5).
        features: encoder channels (XVFI's ``nf``).
        flow_features: channels inside the BiOF-I and BiOF-T flow nets.
        flow_layers: dilated 3x3 convolutions in each flow net (dilations 1, 2, 4, ...).
        encoder_blocks: residual blocks of the shared encoder.
        unet_features: channels of the refinement U-Net's first level (doubling per level).
        unet_depth: U-Net levels (1 = no downsampling).
        n_scales: pyramid levels in training (scales 1, 1/2, ..., 1/2**(n_scales-1)).
        module_stride: flows are estimated at ``1/module_stride`` of each scale (XVFI's M);
            a power of two, at most ``2**(unet_depth-1)``.
        flow_reversal: ``"cfr"`` (complementary flow reversal) or ``"linear"``.
    """

    in_channels: int = 1
    features: int = 64
    flow_features: int = 128
    flow_layers: int = 9
    encoder_blocks: int = 4
    unet_features: int = 64
    unet_depth: int = 3
    n_scales: int = 5
    module_stride: int = 2
    flow_reversal: str = "cfr"

    PRESETS: ClassVar[dict[str, TemporalConfig]]

    def __post_init__(self) -> None:
        for name in ("in_channels", "features", "flow_features", "flow_layers", "encoder_blocks",
                     "unet_features", "unet_depth", "n_scales", "module_stride"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < (0 if name == "encoder_blocks" else 1):
                raise ConfigError(f"temporal config: {name} must be a positive integer, got {value!r}")
        m = self.module_stride
        if m & (m - 1) or m > 2 ** (self.unet_depth - 1):
            raise ConfigError(
                f"temporal config: module_stride must be a power of two at most "
                f"2**(unet_depth-1) = {2 ** (self.unet_depth - 1)}, got {m}"
            )
        if self.flow_reversal not in REVERSALS:
            raise ConfigError(
                f"temporal config: flow_reversal must be one of {REVERSALS}, got {self.flow_reversal!r}"
            )

    def stride_for(self, n_scales: int) -> int:
        """Multiple that frame sides must be of when running ``n_scales`` pyramid levels."""
        return 2 ** (n_scales - 1) * max(self.module_stride, 2 ** (self.unet_depth - 1))

    @property
    def stride(self) -> int:
        """Multiple that frame sides must be of (training patches: choose sides accordingly)."""
        return self.stride_for(self.n_scales)

    @classmethod
    def preset(cls, name: str) -> TemporalConfig:
        """The named preset (``"paper"``, ``"small"``, ``"tiny"``); ConfigError if unknown."""
        if name not in cls.PRESETS:
            raise ConfigError(f"unknown temporal preset {name!r}; known: {', '.join(cls.PRESETS)}")
        return cls.PRESETS[name]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able field values."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TemporalConfig:
        """Build from :meth:`to_dict` output (e.g. checkpoint metadata); ConfigError on unknown keys."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"temporal config: unknown field(s) {', '.join(unknown)}")
        return cls(**values)


#: "paper" reproduces the XVFI size of DeepCAMS (about 5.6 M parameters, one channel);
#: "small" trains on a CPU in minutes; "tiny" is for unit tests.
PRESETS: dict[str, TemporalConfig] = {
    "paper": TemporalConfig(),
    "small": TemporalConfig(
        features=16, flow_features=32, flow_layers=3, encoder_blocks=1,
        unet_features=16, unet_depth=2, n_scales=3, module_stride=2,
    ),
    "tiny": TemporalConfig(
        features=8, flow_features=8, flow_layers=2, encoder_blocks=1,
        unet_features=8, unet_depth=2, n_scales=2, module_stride=2,
    ),
}
TemporalConfig.PRESETS = PRESETS
