"""Benchmark DeepCAMS: parameters, downscaling one global day, training throughput.

    python benchmarks/bench_deepcams.py                      # small and paper, CPU (+ CUDA if present)
    python benchmarks/bench_deepcams.py --presets small --partial small:cpu --threads 1

Prints:

1. parameter counts of both stages (``aprior.models.summary.get_summary``);
2. time and peak memory to downscale one global day: 9 EAC4-like 0.75 degree frames
   (00 UTC to the next day's 00 UTC) -> 24 hourly 0.25 degree frames, first with the
   baseline pipelines (linear + area, and linear + bicubic; the time to write the day's
   file, zlib netCDF, is given apart), then with the learned chains of ``--chains``
   (network + network and network + area by default) for the "small" and "paper"
   presets, random weights (the time does not depend on the weights).
   Each case runs in a fresh subprocess so the peak
   resident memory (``ru_maxrss``) is its own; on CUDA the peak is
   ``torch.cuda.max_memory_allocated``. Cases too slow for a full day (``--partial``:
   paper size on the CPU by default) time one temporal window and one spatial frame and
   extrapolate to the day (8 windows, 24 frames), and say so;
3. training samples per second of each stage: forward, backward and an AdamW step on
   random batches of crops (temporal 64 x 64 coarse cells, 128 x 128 for the paper size;
   spatial 32 x 32 -> 96 x 96), data loading excluded.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import torch

#: temporal training crop side per preset: the paper-size net's dilated flow convolutions
#: need at least 128 (at 64 its coarsest scale is narrower than the dilation)
TEMPORAL_CROP = {"tiny": 64, "small": 64, "paper": 128}


def _stages(preset: str, device: str):
    from aprior.models.deepcams.data import Normalisation
    from aprior.models.deepcams.downscale import stage_from_state
    from aprior.models.deepcams.training import build_network, model_config

    out = []
    for stage in ("temporal", "spatial"):
        torch.manual_seed(0)
        cfg = model_config(stage, preset)
        meta = {"model": f"deepcams-{stage}", "preset": preset, "config": cfg.to_dict(),
                "normalisation": Normalisation(mean=0.36, std=0.15).to_dict(), "gap_hours": 3}
        out.append(stage_from_state(stage, build_network(stage, cfg).state_dict(), meta, device))
    return tuple(out)


def _eac4(n_frames: int):
    """A smooth random global field, 3-hourly, EAC4 layout converted to PM25Field."""
    from aprior.inputs.pm25 import PM25Field

    rng = np.random.default_rng(0)
    lat = np.linspace(-90, 90, 241)
    lon = np.arange(480) * 0.75 - 180
    base = 5 + 3 * np.cos(np.deg2rad(lat))[:, None] + np.zeros((241, 480))
    vals = np.stack([base * (1 + 0.3 * np.sin(np.deg2rad(lon - 10 * k))[None, :])
                     + rng.gamma(1.0, 2.0, (241, 480)) for k in range(n_frames)])
    times = np.datetime64("2023-03-01T00", "h") + 3 * np.arange(n_frames).astype("timedelta64[h]")
    return PM25Field(times, lat, lon, vals.astype(np.float32), "bench")


def _peak(device: str) -> dict:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux
    out = {"peak_rss_mb": round(rss, 1)}
    if device.startswith("cuda"):
        out["cuda_peak_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def case_downscale(preset: str, device: str, partial: bool, temporal: str = "network",
                   spatial: str = "network") -> dict:
    import tempfile
    from pathlib import Path

    from aprior.models.deepcams.data import field_to_nodes
    from aprior.models.deepcams.downscale import (
        downscale_day,
        interpolate_hours,
        upscale_baseline,
        upscale_frames,
    )
    from aprior.models.deepcams.report import write_downscaled

    stages = _stages(preset, device) if "network" in (temporal, spatial) else (None, None)
    field = _eac4(9)
    if not partial:
        _sync(device)
        t0 = time.perf_counter()
        out = downscale_day("2023-03-01", field, stages=stages, temporal=temporal, spatial=spatial)
        _sync(device)
        seconds = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            write_downscaled(Path(tmp) / "day.nc", out, {"date": "2023-03-01"})
            write_s = time.perf_counter() - t0
        return {"hours": int(out.values.shape[0]), "seconds": seconds, "write_seconds": write_s,
                "extrapolated": False, **_peak(device)}
    temporal_stage, spatial_stage = stages
    nodes = field_to_nodes(field)
    t0 = time.perf_counter()
    lon = np.arange(nodes.shape[-1]) * (360.0 / nodes.shape[-1])
    if temporal == "network":
        interpolate_hours(temporal_stage, nodes[:1], nodes[1:2], [1 / 3, 2 / 3], lon=lon,
                          times0=field.times[:1])
    _sync(device)
    t_pair = time.perf_counter() - t0
    t0 = time.perf_counter()
    if spatial == "network":
        upscale_frames(spatial_stage, nodes[:1])
    else:
        upscale_baseline(spatial, nodes[:1])
    _sync(device)
    t_frame = time.perf_counter() - t0
    return {"hours": 24, "seconds": 8 * t_pair + 24 * t_frame, "extrapolated": True,
            "temporal_s_per_window": t_pair, "spatial_s_per_frame": t_frame, **_peak(device)}


def case_train(stage: str, preset: str, device: str, steps: int, micro: int) -> dict:
    from aprior.models.deepcams.spatial import spatial_loss
    from aprior.models.deepcams.temporal import temporal_loss
    from aprior.models.deepcams.training import build_network, model_config

    torch.manual_seed(0)
    net = build_network(stage, model_config(stage, preset)).to(device).train()
    opt = torch.optim.AdamW(net.parameters(), 1e-4)
    if stage == "temporal":
        side = TEMPORAL_CROP[preset]
        g = [torch.randn(micro, 1, side, side, device=device) for _ in range(3)]
        t = torch.full((micro,), 1 / 3, device=device)
        sun = torch.rand(micro, net.config.aux_channels, side, side, device=device)

        def step():
            return temporal_loss(net(g[0], g[1], t, sun=sun), g[2], g[0], g[1],
                                 linear_weight=net.config.loss_linear,
                                 to_concentration=net.to_concentration)[0]
    else:
        x, y = torch.randn(micro, 1, 32, 32, device=device), torch.randn(micro, 1, 96, 96, device=device)

        def step():
            return spatial_loss(net(x), y)[0]
    times = []
    for i in range(steps + 1):
        _sync(device)
        t0 = time.perf_counter()
        opt.zero_grad()
        step().backward()
        opt.step()
        _sync(device)
        if i:  # the first step warms up kernels
            times.append(time.perf_counter() - t0)
    return {"samples_per_second": micro * len(times) / sum(times), "micro_batch": micro, **_peak(device)}


def _run_case(args: list[str], threads: int | None) -> dict:
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    cmd = [sys.executable, __file__, "--case", *args] + (["--threads", str(threads)] if threads else [])
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode:
        return {"error": (res.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(res.stdout.strip().splitlines()[-1])


def _baselines(devices: list[str], threads: int | None) -> None:
    """Time the baseline pipelines (no network) on one global day."""
    for temporal, spatial in (("linear", "area"), ("linear", "bicubic")):
        for dev in devices:
            r = _run_case(["downscale", "none", dev, "full", temporal, spatial], threads)
            if "error" in r:
                print(f"  {temporal} + {spatial} {dev:<5} failed: {r['error']}")
                continue
            default = ""
            print(f"  {temporal} + {spatial:<8} {dev:<5} {r['seconds']:8.1f} s for {r['hours']} hours "
                  f"(+ {r['write_seconds']:.1f} s to write the file), peak RSS {r['peak_rss_mb']:.0f} MB{default}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", default="small,paper")
    p.add_argument("--devices", default=None, help="cpu,cuda (default: cpu, plus cuda when available)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--partial", default="paper:cpu", help="preset:device cases timed on one window and "
                   "one frame and extrapolated (comma-separated; 'none' for none)")
    p.add_argument("--chains", default="network+network,network+area",
                   help="the learned chains to time per preset (temporal+spatial, comma-separated)")
    p.add_argument("--train-steps", type=int, default=3)
    p.add_argument("--micro-batch", type=int, default=4)
    p.add_argument("--case", nargs="+", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.case:
        kind, *rest = a.case
        if kind == "downscale":
            out = case_downscale(rest[0], rest[1], rest[2] == "partial", *rest[3:5])
        else:
            out = case_train(rest[0], rest[1], rest[2], int(rest[3]), int(rest[4]))
        print(json.dumps(out))
        return
    from aprior.models.summary import get_summary

    presets = a.presets.split(",")
    devices = a.devices.split(",") if a.devices else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    partial = set(a.partial.split(","))
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, cpus {os.cpu_count()}"
          + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""))
    print("\nparameters")
    for preset in presets:
        for name in ("deepcams-temporal", "deepcams-spatial"):
            print(f"  {name:<18} {preset:<6} {get_summary(name, preset).n_params:>12,}")
    print("\ndownscale one global day (9 x 241 x 480 -> 24 x 721 x 1440)")
    _baselines(devices, a.threads)
    chains = [tuple(c.split("+")) for c in a.chains.split(",") if c]
    for preset in presets:
        for dev in devices:
            for temporal, spatial in chains:
                mode = "partial" if f"{preset}:{dev}" in partial else "full"
                if mode == "partial" and "network" not in (temporal, spatial):
                    continue
                r = _run_case(["downscale", preset, dev, mode, temporal, spatial], a.threads)
                name = f"{temporal} + {spatial}, {preset:<6} {dev:<5}"
                if "error" in r:
                    print(f"  {name} failed: {r['error']}")
                    continue
                extra = (f" (extrapolated from {r['temporal_s_per_window']:.1f} s per window, "
                         f"{r['spatial_s_per_frame']:.1f} s per frame)") if r["extrapolated"] else ""
                cuda = f", CUDA peak {r['cuda_peak_mb']:.0f} MB" if "cuda_peak_mb" in r else ""
                print(f"  {name} {r['seconds']:8.1f} s for {r['hours']} hours, peak RSS "
                      f"{r['peak_rss_mb']:.0f} MB{cuda}{extra}")
    print(f"\ntraining throughput (random batches, micro-batch {a.micro_batch}, data loading excluded; "
          f"temporal crops {TEMPORAL_CROP}, spatial 32 -> 96)")
    for preset in presets:
        for dev in devices:
            for stage in ("temporal", "spatial"):
                r = _run_case(["train", stage, preset, dev, str(a.train_steps), str(a.micro_batch)], a.threads)
                if "error" in r:
                    print(f"  {stage:<8} {preset:<6} {dev:<5} failed: {r['error']}")
                    continue
                cuda = f", CUDA peak {r['cuda_peak_mb']:.0f} MB" if "cuda_peak_mb" in r else ""
                print(f"  {stage:<8} {preset:<6} {dev:<5} {r['samples_per_second']:8.2f} samples/s, "
                      f"peak RSS {r['peak_rss_mb']:.0f} MB{cuda}")


if __name__ == "__main__":
    main()
