"""Configuration of the DeepCAMS temporal network (:mod:`aprior.models.deepcams.temporal`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from aprior.errors import ConfigError
from aprior.models.deepcams.flow import REVERSALS

#: where the Eq. 3 blend is taken (:attr:`TemporalConfig.blend`)
BLENDS = ("normalised", "concentration")


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
        solar_time: the network also gets the local solar time of every pixel at the two
            frames and at the target (sin and cos of ``2 pi LST / 24``, six channels,
            :func:`aprior.models.deepcams.data.solar_channels`): the boundary-layer cycle
            that drives the largest changes between two frames follows local solar time,
            which two frames alone cannot tell. Not in the paper (a documented extension).
        blend: where the Eq. 3 blend of the warped frames is taken: ``"normalised"`` (the
            paper: in the network's log space, so the untrained net is linear
            interpolation of ``log1p(c / scale)``) or ``"concentration"`` (in ug m-3 with
            the stage's normalisation, so the untrained net is exactly the correct linear
            baseline ``(1 - t) G0 + t G1`` in ug m-3, the quantity it is scored on).
        loss_linear: weight of an extra Huber term of the error in ug m-3 (divided by the
            normalisation's scale) on the final prediction, added to the paper's Eq. 4-6
            log-space L1; 0 = the paper's loss. An L1 loss (in any space) is minimised by
            the median, which next to a sharp transition is the linear value; the squared
            part (errors below ``loss_delta * scale``) aims at the mean, which RMSE scores,
            and the linear part beyond keeps unforeseeable fire onsets from dominating.
        loss_delta: where that Huber term turns from squared to linear (units of the
            normalisation's scale: 5 = 50 ug m-3 at scale 10).
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
    solar_time: bool = False
    blend: str = "normalised"
    loss_linear: float = 0.0
    loss_delta: float = 5.0

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

        if self.blend not in BLENDS:
            raise ConfigError(f"temporal config: blend must be one of {BLENDS}, got {self.blend!r}")
        if not isinstance(self.solar_time, bool):
            raise ConfigError(f"temporal config: solar_time must be true or false, got {self.solar_time!r}")
        if not (isinstance(self.loss_linear, int | float) and self.loss_linear >= 0):
            raise ConfigError(f"temporal config: loss_linear must be a number >= 0, got {self.loss_linear!r}")
        if not (isinstance(self.loss_delta, int | float) and self.loss_delta > 0):
            raise ConfigError(f"temporal config: loss_delta must be a number > 0, got {self.loss_delta!r}")

    @property
    def aux_channels(self) -> int:
        """Extra per-pixel input channels (the solar-time maps of t0, t1 and t)."""
        return 6 if self.solar_time else 0

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
#: "small" trains on a CPU in minutes; "tiny" is for unit tests. "paper" and "small" use
#: the solar-time inputs, the blend in ug m-3 and the extra ug m-3 loss term (see
#: :class:`TemporalConfig`); the dataclass defaults are the paper's choices, which older
#: weights files (recorded without these fields) were trained with.
_EXTENSIONS = {"solar_time": True, "blend": "concentration", "loss_linear": 1.0}
PRESETS: dict[str, TemporalConfig] = {
    "paper": TemporalConfig(**_EXTENSIONS),
    "small": TemporalConfig(
        features=16, flow_features=32, flow_layers=3, encoder_blocks=1,
        unet_features=16, unet_depth=2, n_scales=3, module_stride=2, **_EXTENSIONS,
    ),
    "tiny": TemporalConfig(
        features=8, flow_features=8, flow_layers=2, encoder_blocks=1,
        unet_features=8, unet_depth=2, n_scales=2, module_stride=2, **_EXTENSIONS,
    ),
}
TemporalConfig.PRESETS = PRESETS
