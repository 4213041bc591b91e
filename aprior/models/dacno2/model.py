"""The DACNO2 network (paper Sect. 2.3): multi-branch encoder, per-scale 3D fusion, 3D decoder.

Five input groups are encoded separately: ERA5 single-level fields by a ConvLSTM-2D branch,
ERA5 pressure-level fields by a ConvLSTM-3D branch (both upscaling P/8 -> P), emissions and
geography by 2D inception CNNs (downscaling P -> P/8), temporal indicators by an MLP. At each
of the four scales (P/8, P/4, P/2, P) transition layers turn every branch's features into a
3D tensor ``(C, n_levels, s, s)`` that is non-zero only on the branch's physically relevant
layers (emissions and geography: the surface layer; single-level meteorology: the lowest five;
pressure-level meteorology: all), the tensors are concatenated and fused by an inception-3D
block; the temporal embedding joins only at P/8. The decoder upsamples the P/8 fusion to P in
(H, W), concatenating the fused tensor of each finer scale (the skip connections), and ends
with a 1x1x1 convolution and a softplus.

Choices the paper leaves open are ours: skips are concatenated (U-Net style), upsampling is
bilinear, the emission/geography CNNs downsample by 2x2 max pooling, pressure levels are
linearly interpolated (in level index) to ``n_levels`` when their number differs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aprior.errors import ConfigError
from aprior.models.dacno2.blocks import (
    FUSION_PATHS_3D,
    CNNEncoder,
    Inception,
    MetEncoder,
    Note,
    conv_bn_act,
    ignore,
    prefixed,
    run_stage,
    upsample_xy,
)
from aprior.models.dacno2.config import N_SCALES, DACNO2Config
from aprior.models.summary import ModelSummary, count_parameters

#: the keyword arguments of :meth:`DACNO2.forward`, as named in data batches
INPUT_KEYS = ("met2d", "met3d", "emis", "geo", "temporal")
#: parts of the network, as attribute names (parameter counts in :func:`summary`)
PARTS = ("met2d", "met3d", "emissions", "geography", "temporal", "fusion", "decoder")
SCALE_NAMES = ("P/8", "P/4", "P/2", "P")


class Transition2d(nn.Module):
    """2D features to a 3D tensor filled on the lowest ``n_layers`` of ``n_levels``, zero above.

    ``(B, C, s, s)`` -> conv 3x3, BN, SiLU -> ``(B, channels, n_levels, s, s)``; each filled
    layer gets its own learned projection.
    """

    def __init__(self, in_channels: int, channels: int, n_layers: int, n_levels: int) -> None:
        super().__init__()
        self.channels, self.n_layers, self.n_levels = channels, n_layers, n_levels
        self.body = conv_bn_act(2, in_channels, channels * n_layers, 3)

    def forward(self, x: Tensor) -> Tensor:
        y = self.body(x).unflatten(1, (self.channels, self.n_layers))
        return F.pad(y, (0, 0, 0, 0, 0, self.n_levels - self.n_layers))


class Transition3d(nn.Module):
    """Pressure-level features to all ``n_levels`` layers: ``(B, C, Zp, s, s)`` -> ``(B, channels, Z, s, s)``.

    When ``Zp != n_levels`` the features are first interpolated linearly along the vertical
    (level index, bottom and top levels aligned).
    """

    def __init__(self, in_channels: int, channels: int, n_levels: int) -> None:
        super().__init__()
        self.n_levels = n_levels
        self.body = conv_bn_act(3, in_channels, channels, 3)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[2] != self.n_levels:
            x = F.interpolate(x, size=(self.n_levels, *x.shape[-2:]), mode="trilinear",
                              align_corners=True)
        return self.body(x)


class FusionStage(nn.Module):
    """Transitions of the four branches, concatenation (+ temporal embedding), inception-3D."""

    def __init__(self, cfg: DACNO2Config, k: int, channels: dict[str, int], temporal: bool) -> None:
        super().__init__()
        c, z = cfg.transition_channels[k], cfg.n_levels
        self.met2d = Transition2d(channels["met2d"], c, cfg.single_level_layers, z)
        self.met3d = Transition3d(channels["met3d"], c, z)
        self.emissions = Transition2d(channels["emissions"], c, cfg.surface_layers, z)
        self.geography = Transition2d(channels["geography"], c, cfg.surface_layers, z)
        cin = 4 * c + (cfg.temporal_embedding if temporal else 0)
        self.inception = Inception(3, cin, cfg.fusion_width[k], FUSION_PATHS_3D, cfg.dropout)
        self.out_channels = self.inception.out_channels

    def forward(self, met2d: Tensor, met3d: Tensor, emis: Tensor, geo: Tensor,
                temporal: Tensor | None = None, note: Note = ignore) -> Tensor:
        """Branch features at one scale (and ``(B, E)`` temporal) -> ``(B, out_channels, Z, s, s)``."""
        parts = [self.met2d(met2d), self.met3d(met3d), self.emissions(emis), self.geography(geo)]
        for name, t in zip(("met2d", "met3d", "emissions", "geography"), parts, strict=True):
            note(f"transition {name}", t)
        if temporal is not None:
            parts.append(temporal[:, :, None, None, None].expand(-1, -1, *parts[0].shape[2:]))
        return self.inception(torch.cat(parts, dim=1))


class DecoderStage(nn.Module):
    """Upsample x2 in (H, W), concatenate the fused skip, inception-3D."""

    def __init__(self, in_channels: int, skip_channels: int, width: int, dropout: float) -> None:
        super().__init__()
        self.inception = Inception(3, in_channels + skip_channels, width, FUSION_PATHS_3D, dropout)
        self.out_channels = self.inception.out_channels

    def forward(self, x: Tensor | None, skip: Tensor) -> Tensor:
        """``(B, C, Z, s/2, s/2)`` (None at P/8) and ``(B, C_skip, Z, s, s)`` -> ``(B, out, Z, s, s)``."""
        if x is not None:
            skip = torch.cat([upsample_xy(x), skip], dim=1)
        return self.inception(skip)


class DACNO2(nn.Module):
    """DACNO2: daily 3D NO2 on the 2 km grid from ERA5, emissions, geography and the calendar.

    Args:
        config: network sizes; the paper preset when None.
    """

    def __init__(self, config: DACNO2Config | None = None) -> None:
        super().__init__()
        cfg = self.config = config or DACNO2Config()
        self.met2d = MetEncoder(2, cfg.single_channels, cfg.lstm2d_hidden, cfg.met2d_width,
                                cfg.lstm_kernel, cfg.dropout)
        self.met3d = MetEncoder(3, cfg.pressure_channels, cfg.lstm3d_hidden, cfg.met3d_width,
                                cfg.lstm_kernel, cfg.dropout)
        self.emissions = CNNEncoder(cfg.emission_channels, cfg.emission_width, cfg.dropout)
        self.geography = CNNEncoder(cfg.geography_channels, cfg.geography_width, cfg.dropout)
        self.temporal = nn.Sequential(nn.Linear(cfg.temporal_features, cfg.temporal_hidden), nn.SiLU(),
                                      nn.Linear(cfg.temporal_hidden, cfg.temporal_embedding))
        self.fusion = nn.ModuleList(
            FusionStage(cfg, k, {"met2d": self.met2d.out_channels[k], "met3d": self.met3d.out_channels[k],
                                 "emissions": self.emissions.out_channels[k],
                                 "geography": self.geography.out_channels[k]}, temporal=k == 0)
            for k in range(N_SCALES))
        stages, cin = [], 0
        for k in range(N_SCALES):
            stages.append(DecoderStage(cin, self.fusion[k].out_channels, cfg.decoder_width[k], cfg.dropout))
            cin = stages[-1].out_channels
        self.decoder = nn.ModuleDict({"stages": nn.ModuleList(stages), "head": nn.Conv3d(cin, 1, 1)})

    def forward(self, met2d: Tensor, met3d: Tensor, emis: Tensor, geo: Tensor, temporal: Tensor) -> Tensor:
        """Predict one day's NO2 profiles on a patch.

        Args:
            met2d: ``(B, T, Cs, P/8, P/8)`` ERA5 single-level fields, z-scored, hourly.
            met3d: ``(B, T, Cp, Zp, P/8, P/8)`` ERA5 pressure-level fields, z-scored, hourly,
                levels from the lowest (highest pressure) up.
            emis: ``(B, Ce, P, P)`` emissions and proxies on the 2 km grid, z-scored.
            geo: ``(B, Cg, P, P)`` elevation (z-scored) and one-hot land cover.
            temporal: ``(B, Ct)`` day-of-week sin, cos and z-scored flights.

        Returns:
            ``(B, n_levels, P, P)`` NO2, >= 0, in ratio-scaled ug m-3 (CAMS / layer ratio),
            level 0 = surface. P may differ from ``config.patch`` (the network is fully
            convolutional) but must be 8 times the ERA5 grid; T, channels and Zp must match
            the config.
        """
        return self._run(met2d, met3d, emis, geo, temporal)

    def trace_shapes(self, inputs: dict[str, Tensor]) -> list[tuple[str, tuple[int, ...]]]:
        """``(what, shape)`` along the forward pass for ``inputs`` (a dict of :data:`INPUT_KEYS`)."""
        shapes: list[tuple[str, tuple[int, ...]]] = []

        def note(name: str, t: Tensor) -> None:
            shapes.append((name, tuple(t.shape)))

        self._run(*(inputs[k] for k in INPUT_KEYS), note)
        return shapes

    def _run(self, met2d: Tensor, met3d: Tensor, emis: Tensor, geo: Tensor, temporal: Tensor,
             note: Note = ignore) -> Tensor:
        self._check_inputs(met2d, met3d, emis, geo, temporal)
        ckpt = self.config.gradient_checkpointing
        feats: dict[str, list[Tensor]] = {}
        for name, x in (("met2d", met2d), ("met3d", met3d), ("emissions", emis), ("geography", geo)):
            note(f"{name} input", x)
            branch = getattr(self, name)
            if isinstance(branch, MetEncoder):
                feats[name] = branch(x, checkpointed=ckpt, note=prefixed(note, name))
            else:
                feats[name] = branch(x, checkpointed=ckpt)
            for k, f in enumerate(feats[name]):
                note(f"{name} feature {SCALE_NAMES[k]}", f)
        embedding = self.temporal(temporal)
        note("temporal embedding", embedding)
        x: Tensor | None = None
        for k in range(N_SCALES):
            fused = run_stage(self.fusion[k], *(feats[n][k] for n in ("met2d", "met3d", "emissions", "geography")),
                              embedding if k == 0 else None, prefixed(note, f"fusion {SCALE_NAMES[k]}"),
                              checkpointed=ckpt)
            note(f"fused {SCALE_NAMES[k]}", fused)
            x = run_stage(self.decoder["stages"][k], x, fused, checkpointed=ckpt)
            note(f"decoder {SCALE_NAMES[k]}", x)
        y = self.decoder["head"](x).squeeze(1)
        out = F.softplus(y.to(torch.promote_types(y.dtype, torch.float32)))
        note("output", out)
        return out

    def _check_inputs(self, met2d: Tensor, met3d: Tensor, emis: Tensor, geo: Tensor,
                      temporal: Tensor) -> None:
        cfg = self.config
        b = met2d.shape[0]
        if met2d.dim() != 5:
            raise ConfigError(f"DACNO2 input met2d must be (B, T, Cs, H, W), got {tuple(met2d.shape)}")
        h, w = met2d.shape[-2:]
        expected = {
            "met2d": (b, cfg.n_hours, cfg.single_channels, h, w),
            "met3d": (b, cfg.n_hours, cfg.pressure_channels, cfg.n_pressure_levels, h, w),
            "emis": (b, cfg.emission_channels, 8 * h, 8 * w),
            "geo": (b, cfg.geography_channels, 8 * h, 8 * w),
            "temporal": (b, cfg.temporal_features),
        }
        for name, x in zip(INPUT_KEYS, (met2d, met3d, emis, geo, temporal), strict=True):
            if tuple(x.shape) != expected[name]:
                raise ConfigError(f"DACNO2 input {name} has shape {tuple(x.shape)}, expected "
                                  f"{expected[name]} for this model (n_hours={cfg.n_hours}, "
                                  f"ERA5 grid {h}x{w}, 2 km grid {8 * h}x{8 * w})")


def example_inputs(config: DACNO2Config, batch: int = 1, device: torch.device | str | None = None,
                   generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """Random standard-normal inputs of the right shapes (tests, benchmarks, summaries)."""
    c, s, p, t = config, config.coarse, config.patch, config.n_hours
    shapes = {
        "met2d": (batch, t, c.single_channels, s, s),
        "met3d": (batch, t, c.pressure_channels, c.n_pressure_levels, s, s),
        "emis": (batch, c.emission_channels, p, p),
        "geo": (batch, c.geography_channels, p, p),
        "temporal": (batch, c.temporal_features),
    }
    return {k: torch.randn(v, device=device, generator=generator) for k, v in shapes.items()}


def part_parameters(model: DACNO2) -> dict[str, int]:
    """Trainable parameters per part (:data:`PARTS`); they sum to the model's total."""
    return {name: count_parameters(getattr(model, name)) for name in PARTS}


#: the size presets :func:`summary` knows (``aprior models --all-presets``)
PRESETS = DACNO2Config.PRESETS


def summary(preset: str) -> ModelSummary:
    """Parameter counts and shapes (batch 1) of DACNO2 at ``preset``, computed on the meta device."""
    cfg = DACNO2Config.preset(preset)
    with torch.device("meta"):
        model = DACNO2(cfg).eval()
        inputs = example_inputs(cfg, batch=1, device="meta")
    with torch.no_grad():
        shapes = model.trace_shapes(inputs)
    return ModelSummary(name="dacno2", preset=preset, n_params=count_parameters(model),
                        parts=part_parameters(model), shapes=shapes)
