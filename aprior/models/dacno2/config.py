"""DACNO2 configuration: input sizes, layer widths, presets.

Widths are given per encoder/decoder scale, always ordered coarse to fine: index 0 is the
latent scale P/8 (16 km), then P/4 (8 km), P/2 (4 km) and P (2 km), P being ``patch``.

The paper (Sect. 2.3) fixes the structure but not the layer widths. The ``paper`` preset
(the defaults) is our choice for the paper's sizes (patch 256, 24 h, 8 levels): wide at the
16 km latent scale, narrow at 2 km where every 3D channel holds ``8 * 256 * 256`` voxels and
the ConvLSTM-3D still runs three steps. It has about 1.1 M parameters and costs about
225 GFLOP per sample forward (about three times that with the backward pass), with about
3 GiB of activations kept for the backward pass per sample in float32: a model that trains
for days to weeks on two 24 GB GPUs over the paper's ~10 000 samples a phase, as the paper's
did. ``small`` (patch 128, 0.09 M parameters) trains on a CPU; ``medium`` (patch 128,
about 0.3 M parameters: twice ``small``'s widths in the 2D encoders and the decoder's coarse
scales, the full-resolution 3D parts kept narrow, where the cost is) is the mid-size CPU
preset; ``tiny`` (patch 64) is for unit tests. ``aprior models dacno2 --all-presets`` prints the parts and shapes of each.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from aprior.errors import ConfigError

Widths = tuple[int, int, int, int]

N_SCALES = 4  # P/8, P/4, P/2, P

_INT_FIELDS = (
    "n_levels", "patch", "n_hours", "single_channels", "pressure_channels", "n_pressure_levels",
    "emission_channels", "geography_channels", "temporal_features", "single_level_layers",
    "surface_layers", "temporal_hidden", "temporal_embedding", "lstm_kernel",
)
_WIDTH_FIELDS = (
    "lstm2d_hidden", "lstm3d_hidden", "met2d_width", "met3d_width", "emission_width",
    "geography_width", "transition_channels", "fusion_width", "decoder_width",
)


@dataclass(frozen=True)
class DACNO2Config:
    """Sizes of a DACNO2 network. Defaults are the ``paper`` preset.

    Attributes:
        n_levels: output levels (heights above the surface, level 0 = surface).
        patch: 2 km cells per patch side P; a multiple of 8 (ERA5 inputs are at P/8).
        n_hours: hours of ERA5 input per sample (the paper: 24).
        single_channels: ERA5 single-level variables.
        pressure_channels: ERA5 pressure-level variables.
        n_pressure_levels: ERA5 pressure levels Zp, ordered from the lowest (highest
            pressure) up, like the output levels.
        emission_channels: emission inventory and proxies (NOx, roads, population, lights).
        geography_channels: elevation and the one-hot land-cover classes.
        temporal_features: temporal indicators (day-of-week sin/cos, flights).
        single_level_layers: lowest output layers fed by single-level meteorology (paper: 5).
        surface_layers: lowest output layers fed by emissions and geography (paper: 1).
        lstm2d_hidden: ConvLSTM-2D hidden channels per scale (coarse to fine).
        lstm3d_hidden: ConvLSTM-3D hidden channels per scale.
        met2d_width: channels of each of the 4 branches of the inception block after each
            ConvLSTM-2D (output ``4 * width``).
        met3d_width: the same for the ConvLSTM-3D branch.
        emission_width: channels of each of the 5 branches of the emission CNN's inception
            blocks (output ``5 * width``), per scale.
        geography_width: the same for the geography CNN.
        transition_channels: channels of each branch's 3D transition tensor, per scale.
        fusion_width: channels of each of the 4 branches of the fusion inception-3D blocks.
        decoder_width: channels of each of the 4 branches of the decoder inception-3D blocks.
        temporal_hidden: hidden units of the temporal MLP.
        temporal_embedding: size of the temporal embedding (channels added at P/8).
        lstm_kernel: spatial kernel of the ConvLSTM gates (odd).
        dropout: dropout probability at the end of every inception path (the paper gives no
            value; ours).
        gradient_checkpointing: recompute activations stage by stage in the backward pass
            (less memory, about a third more compute).
    """

    n_levels: int = 8
    patch: int = 256
    n_hours: int = 24
    single_channels: int = 9
    pressure_channels: int = 6
    n_pressure_levels: int = 8
    emission_channels: int = 4
    geography_channels: int = 6
    temporal_features: int = 3
    single_level_layers: int = 5
    surface_layers: int = 1
    lstm2d_hidden: Widths = (64, 32, 16, 8)
    lstm3d_hidden: Widths = (32, 16, 8, 4)
    met2d_width: Widths = (16, 8, 4, 4)
    met3d_width: Widths = (8, 4, 4, 2)
    emission_width: Widths = (32, 16, 8, 4)
    geography_width: Widths = (16, 8, 4, 4)
    transition_channels: Widths = (16, 8, 8, 4)
    fusion_width: Widths = (16, 8, 8, 4)
    decoder_width: Widths = (32, 16, 8, 4)
    temporal_hidden: int = 32
    temporal_embedding: int = 16
    lstm_kernel: int = 3
    dropout: float = 0.1
    gradient_checkpointing: bool = False

    PRESETS: ClassVar[dict[str, DACNO2Config]]

    def __post_init__(self) -> None:
        for name in _INT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"DACNO2 config: {name} must be a positive integer, got {value!r}")
        for name in _WIDTH_FIELDS:
            value = getattr(self, name)
            if isinstance(value, list):
                value = tuple(value)
                object.__setattr__(self, name, value)
            if (not isinstance(value, tuple) or len(value) != N_SCALES
                    or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value)):
                raise ConfigError(f"DACNO2 config: {name} must be {N_SCALES} positive integers "
                                  f"(coarse to fine), got {value!r}")
        if self.patch % 8 or self.patch < 16:
            raise ConfigError(f"DACNO2 config: patch must be a multiple of 8 and at least 16 "
                              f"(ERA5 inputs are at patch / 8), got {self.patch}")
        for name in ("single_level_layers", "surface_layers"):
            if getattr(self, name) > self.n_levels:
                raise ConfigError(f"DACNO2 config: {name}={getattr(self, name)} exceeds "
                                  f"n_levels={self.n_levels}")
        if self.lstm_kernel % 2 == 0:
            raise ConfigError(f"DACNO2 config: lstm_kernel must be odd, got {self.lstm_kernel}")
        if (isinstance(self.dropout, bool) or not isinstance(self.dropout, int | float)
                or not 0.0 <= self.dropout < 1.0):
            raise ConfigError(f"DACNO2 config: dropout must be in [0, 1), got {self.dropout!r}")
        if not isinstance(self.gradient_checkpointing, bool):
            raise ConfigError("DACNO2 config: gradient_checkpointing must be true or false, "
                              f"got {self.gradient_checkpointing!r}")

    @property
    def coarse(self) -> int:
        """ERA5 cells per patch side (P/8)."""
        return self.patch // 8

    def scale_size(self, k: int) -> int:
        """Cells per side at scale ``k`` (0 = P/8 ... 3 = P)."""
        return self.coarse * 2**k

    def sequence_lengths(self) -> tuple[int, ...]:
        """ConvLSTM sequence length per scale: halved after each block, keeping the last hour."""
        lengths = [self.n_hours]
        for _ in range(N_SCALES - 1):
            lengths.append((lengths[-1] + 1) // 2)
        return tuple(lengths)

    @classmethod
    def preset(cls, name: str) -> DACNO2Config:
        """The named preset (``paper``, ``medium``, ``small``, ``tiny``); ConfigError if unknown."""
        try:
            return cls.PRESETS[name]
        except KeyError:
            raise ConfigError(f"unknown DACNO2 preset {name!r}; known: "
                              f"{', '.join(cls.PRESETS)}") from None

    def replace(self, **changes: Any) -> DACNO2Config:
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (width tuples as lists), for checkpoints and metadata."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DACNO2Config:
        """Inverse of :meth:`to_dict`; missing keys take the defaults, unknown keys are an error."""
        if not isinstance(data, dict):
            raise ConfigError(f"DACNO2 config must be a mapping, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"DACNO2 config: unknown key(s) {', '.join(map(repr, unknown))}")
        values = {k: tuple(v) if k in _WIDTH_FIELDS and isinstance(v, list) else v
                  for k, v in data.items()}
        return cls(**values)


DACNO2Config.PRESETS = {
    # the paper's input sizes; our widths (the paper gives none), see the module docstring
    "paper": DACNO2Config(),
    # CPU-trainable: 256 km patches, a fraction of the widths
    "small": DACNO2Config(
        patch=128,
        lstm2d_hidden=(16, 8, 4, 4), lstm3d_hidden=(8, 4, 4, 2),
        met2d_width=(4, 2, 2, 1), met3d_width=(2, 2, 1, 1),
        emission_width=(8, 4, 2, 2), geography_width=(4, 2, 2, 1),
        transition_channels=(4, 4, 2, 2), fusion_width=(4, 4, 2, 2),
        decoder_width=(8, 4, 2, 2), temporal_hidden=16, temporal_embedding=4,
    ),
    # mid-size CPU preset: wider where it is cheap (2D encoders, coarse 3D scales)
    "medium": DACNO2Config(
        patch=128,
        lstm2d_hidden=(32, 16, 8, 4), lstm3d_hidden=(12, 6, 4, 2),
        met2d_width=(8, 4, 2, 2), met3d_width=(4, 2, 2, 1),
        emission_width=(16, 8, 4, 2), geography_width=(8, 4, 2, 2),
        transition_channels=(8, 4, 4, 2), fusion_width=(8, 4, 4, 2),
        decoder_width=(16, 8, 4, 2), temporal_hidden=32, temporal_embedding=8,
    ),
    # unit tests: the smallest sensible network
    "tiny": DACNO2Config(
        patch=64,
        lstm2d_hidden=(4, 2, 2, 2), lstm3d_hidden=(2, 2, 1, 1),
        met2d_width=(1, 1, 1, 1), met3d_width=(1, 1, 1, 1),
        emission_width=(2, 1, 1, 1), geography_width=(1, 1, 1, 1),
        transition_channels=(2, 1, 1, 1), fusion_width=(2, 1, 1, 1),
        decoder_width=(2, 1, 1, 1), temporal_hidden=4, temporal_embedding=2,
    ),
}


@dataclass(frozen=True)
class PhaseConfig:
    """Loss weights and phase-specific settings (the ``[phase]`` table of ``--config``).

    The paper sums its terms with weight 1 (its Eqs. 1-3); those are the defaults. Three
    default settings are ours (``docs/dacno2.md``, "Where we differ from the paper"); the
    paper's recipe is ``station_profile_top_m = 0`` and ``normalise = false``, and it does
    not say in which mode phase 3 trains (``phase3_eval_layers``).

    Attributes:
        cams_mse: weight of the MSE against CAMS (phases 1, 2).
        cams_ssim: weight of ``1 - SSIM`` against CAMS (phases 1, 2).
        stations: weight of the masked station MSE (phases 2, 3).
        frozen_ssim: weight of ``1 - SSIM`` against the frozen phase-2 model (phase 3).
        ssim_window: SSIM window side in 8 km cells.
        lr_factor: phases 2 and 3 default to phase 1's learning rate times this.
        phase3_val_fraction: fraction of the test year's days phase 3 validates on.
        phase3_val_cells: share of the training station cells that phase 3 leaves out of
            its fit and validates on (seeded; ours), so its early stopping measures skill at
            stations it did not fit; 0: the same cells on held-out days (the paper's set-up
            as far as it says). The evaluation cells are never used either way.
        init_output_bias: phase 1 starts the network's output bias at the training
            targets' mean (an initialisation choice of ours; the paper does not say).
        cams_log_mse: weight of the MSE of ``log(x + log_floor)`` against CAMS at 8 km
            (phases 1, 2): a relative-error term, so clean air (where the absolute MSE is
            small but the column's air-mass factor is most sensitive to the profile) is
            fitted too; 0: the paper's terms only.
        frozen_log_mse: weight of the same log-space MSE against the frozen phase-2 model
            (phase 3), which holds phase 2's clean-air level where no station constrains it.
        log_floor: the floor added before the logarithm (ratio-scaled ug m-3); also the
            floor of the column mean that ``cams_shape_mse`` divides by.
        cams_shape_mse: weight of the MSE of the vertical shape against CAMS at 8 km
            (phases 1, 2): each level over its column's mean over the levels
            (``x_z / (mean_k x_k + log_floor)``, ratio-scaled), so the share of NO2 low
            and high in a column is fitted whatever its amount, in a clean cell as in a
            polluted one (ours, issue 11's tenth round); 0: not used.
        cams_detail_mse: weight of the MSE, against CAMS at 8 km (phases 1, 2), of the
            spatial detail of ``log(x + log_floor)``: each level minus its mean over 32 km
            blocks (4 x 4 CAMS cells), divided by the variance of CAMS's detail. It asks
            for CAMS's contrasts between neighbouring cells, relative ones, so a clean
            cell beside a source must stay clean (ours, issue 11's eleventh round, for a
            field too smooth across the grid); 0: not used.
        station_profile_top_m: the station term of phases 2 and 3 fits every level up to
            this height (m) at the station cells, the station value carried up with the
            CAMS field's own local vertical shape (``station x cams_z / cams_0``, ratio-
            scaled), so a station's information reaches the boundary layer coherently
            instead of as a surface spike; 0: the surface layer only (the paper).
        normalise: divide each MSE term by the variance of its targets over the training
            days (CAMS over all levels, ratio-scaled; the training stations), so the
            terms are dimensionless like ``1 - SSIM`` and comparable in size.
        normalise_levels: with ``normalise``, divide each level's squared errors in the
            CAMS MSE and in the log-space terms (against CAMS, and phase 3's against the
            frozen phase 2) by that level's own variance over the training days instead
            of the variance over all levels, so every level weighs alike: the smooth
            free-troposphere top (ratio-scaled variance about 0.4, against 15 at the
            surface and 8 over all levels on the daily 2021-2023 world), whose mixing
            ratio a retrieval carries up to the tropopause, as much as the surface. The
            usual standardisation of a network's outputs, one per output channel (ours,
            issue 11's eleventh round); false: one variance over all levels.
        phase3_eval_layers: phase 3 trains with its batch norms (running statistics, kept
            fixed) and dropouts in inference mode, the mode its frozen phase-2 anchor runs
            in, so that the anchor terms are zero for the unchanged phase-2 weights and move
            them only as far as the stations pull; false: the usual training mode, in which
            the anchors alone pull the weights (the student's training-mode output differs
            from the teacher's). Ours, the default since the seventh round of issue 11
            (``docs/dacno2.md``); the paper does not say.
    """

    cams_mse: float = 1.0
    cams_ssim: float = 1.0
    stations: float = 1.0
    frozen_ssim: float = 1.0
    ssim_window: int = 7
    lr_factor: float = 0.1
    phase3_val_fraction: float = 0.2
    phase3_val_cells: float = 0.0
    init_output_bias: bool = True
    station_profile_top_m: float = 1000.0
    normalise: bool = True
    normalise_levels: bool = False
    cams_log_mse: float = 0.0
    frozen_log_mse: float = 0.0
    log_floor: float = 0.5
    cams_shape_mse: float = 0.0
    cams_detail_mse: float = 0.0
    phase3_eval_layers: bool = True

    def __post_init__(self) -> None:
        for name in ("cams_mse", "cams_ssim", "stations", "frozen_ssim", "cams_log_mse",
                     "frozen_log_mse", "cams_shape_mse", "cams_detail_mse"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
                raise ConfigError(f"[phase] {name} must be a number >= 0, got {v!r}")
        if not isinstance(self.ssim_window, int) or self.ssim_window < 2:
            raise ConfigError(f"[phase] ssim_window must be an integer >= 2, got {self.ssim_window!r}")
        top = self.station_profile_top_m
        if isinstance(top, bool) or not isinstance(top, int | float) or top < 0:
            raise ConfigError(f"[phase] station_profile_top_m must be a height >= 0 m, got {top!r}")
        floor = self.log_floor
        if isinstance(floor, bool) or not isinstance(floor, int | float) or not floor > 0:
            raise ConfigError(f"[phase] log_floor must be a concentration > 0, got {floor!r}")
        for name in ("normalise", "normalise_levels", "init_output_bias", "phase3_eval_layers"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"[phase] {name} must be true or false, got {getattr(self, name)!r}")
        if self.normalise_levels and not self.normalise:
            raise ConfigError("[phase] normalise_levels = true needs normalise = true (it divides "
                              "by each level's variance instead of the one over all levels)")
        if not 0 < self.lr_factor <= 1:
            raise ConfigError(f"[phase] lr_factor must be in (0, 1], got {self.lr_factor!r}")
        if not 0 < self.phase3_val_fraction < 1:
            raise ConfigError("[phase] phase3_val_fraction must be in (0, 1), got "
                              f"{self.phase3_val_fraction!r}")
        cells = self.phase3_val_cells
        if isinstance(cells, bool) or not isinstance(cells, int | float) or not 0 <= cells < 1:
            raise ConfigError(f"[phase] phase3_val_cells must be in [0, 1), got {cells!r}")
