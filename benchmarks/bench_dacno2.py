"""Benchmark of DACNO2: parameter counts, training throughput, full-domain inference.

Cases, each in a fresh process (wall time and peak memory):

- params:   parameter counts of the paper, small and tiny presets (per part);
- train:    training samples per second (forward, backward, AdamW step; random inputs and
            targets of the right shapes, the phase-2 loss: MSE + SSIM against CAMS at 8 km
            and a masked station MSE): ``--train-steps`` steps of the small and medium presets and
            ``--paper-steps`` of the paper preset, after one warm-up step;
- infer:    one full-domain day (592 x 736 cells of 2 km): inputs normalised, every patch
            predicted (the paper's 12 patches of 256 cells for the paper preset; the small
            preset's 128-cell patches tile the domain with its scaled stride), the Hann
            merge and the layer ratios restored; random inputs of the right shapes.

Peak memory is the peak resident set of the case's process (``VmHWM``, which is what
``resource.getrusage(...).ru_maxrss`` reports for a fresh process; we read VmHWM because
ru_maxrss can carry the parent's peak across fork + exec) and, on CUDA,
``torch.cuda.max_memory_allocated``. GPU cases run when ``torch.cuda.is_available()``.

- train with ``--procs N``: the small and medium presets again as N DDP processes (gloo) of
            one CPU thread each, what ``torchrun --nproc-per-node N -m aprior train ...
            --threads 1`` does: on a small CPU this beats N intra-op threads.

Usage: python benchmarks/bench_dacno2.py [--devices cpu,cuda] [--threads N] [--procs N]
       [--train-steps 4] [--paper-steps 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np


def _peak_mb() -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def case_params() -> dict:
    from aprior.models.dacno2.model import summary

    return {p: {"n_params": (s := summary(p)).n_params, "parts": s.parts}
            for p in ("paper", "medium", "small", "tiny")}


def case_train(preset: str, device: str, steps: int, micro_batch: int, procs: int = 1) -> dict:
    """One process, or ``procs`` CPU processes of one thread each under DDP (gloo), as
    ``torchrun --nproc-per-node N -m aprior train ... --threads 1`` runs them."""
    import torch

    if procs > 1:
        return _case_train_ddp(preset, steps, micro_batch, procs)

    from aprior.models.dacno2.config import DACNO2Config
    from aprior.models.dacno2.model import DACNO2, example_inputs
    from aprior.models.engine import amp_enabled, resolve_device
    from aprior.models.losses import avg_pool_xy, masked_mse, ssim_per_layer

    dev = resolve_device(device)
    cfg = DACNO2Config.preset(preset)
    model = DACNO2(cfg).to(dev).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    x = {k: v.to(dev) for k, v in example_inputs(cfg, micro_batch, generator=g).items()}
    s = cfg.patch
    cams = (torch.rand(micro_batch, cfg.n_levels, s // 4, s // 4, generator=g) * 20).to(dev)
    stations = (torch.rand(micro_batch, s, s, generator=g) * 40).to(dev)
    smask = (torch.rand(micro_batch, s, s, generator=g) < 0.002).to(dev)
    amp = amp_enabled("auto", dev)

    def step() -> None:
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp):
            pred = model(**x)
            pooled = avg_pool_xy(pred, 4)
            loss = (masked_mse(pooled, cams, torch.ones_like(cams, dtype=torch.bool))
                    + 1 - ssim_per_layer(pooled, cams) + masked_mse(pred[:, 0], stations, smask))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()  # warm-up
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    _sync(dev)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(dev)
    dt = time.perf_counter() - t0
    out = {"preset": preset, "device": str(dev), "amp": amp, "micro_batch": micro_batch,
           "steps": steps, "seconds": dt, "samples_per_second": steps * micro_batch / dt}
    if dev.type == "cuda":
        out["cuda_peak_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
    return out


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ddp_worker(rank: int, procs: int, port: int, preset: str, steps: int, micro_batch: int, queue) -> None:
    import os

    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from aprior.models.dacno2.config import DACNO2Config
    from aprior.models.dacno2.model import DACNO2, example_inputs
    from aprior.models.losses import avg_pool_xy, masked_mse, ssim_per_layer

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=procs)
    torch.manual_seed(0)
    cfg = DACNO2Config.preset(preset)
    model = DistributedDataParallel(DACNO2(cfg).train())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(rank)
    x = example_inputs(cfg, micro_batch, generator=g)
    s = cfg.patch
    cams = torch.rand(micro_batch, cfg.n_levels, s // 4, s // 4, generator=g) * 20
    stations = torch.rand(micro_batch, s, s, generator=g) * 40
    smask = torch.rand(micro_batch, s, s, generator=g) < 0.002

    def step() -> None:
        pred = model(**x)
        pooled = avg_pool_xy(pred, 4)
        loss = (masked_mse(pooled, cams, torch.ones_like(cams, dtype=torch.bool))
                + 1 - ssim_per_layer(pooled, cams) + masked_mse(pred[:, 0], stations, smask))
        loss.backward()  # DDP all-reduces the gradients here
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()
    dist.barrier()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    dist.barrier()
    if rank == 0:
        queue.put(time.perf_counter() - t0)
    dist.destroy_process_group()


def _case_train_ddp(preset: str, steps: int, micro_batch: int, procs: int) -> dict:
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    mp.start_processes(_ddp_worker, args=(procs, _free_port(), preset, steps, micro_batch, queue),
                       nprocs=procs, join=True, start_method="spawn")
    dt = queue.get()
    return {"preset": preset, "device": "cpu", "amp": False, "micro_batch": micro_batch,
            "procs": procs, "steps": steps, "seconds": dt,
            "samples_per_second": procs * steps * micro_batch / dt}


def case_infer(preset: str, device: str) -> dict:
    import torch

    from aprior.grids.grid import domain_grid
    from aprior.models.dacno2.config import DACNO2Config
    from aprior.models.dacno2.dataset import Normaliser
    from aprior.models.dacno2.model import DACNO2
    from aprior.models.dacno2.predict import merge_field, predict_patches
    from aprior.models.dacno2.prepare import DataSpec, met3d_names
    from aprior.models.dacno2.targets import LayerRatios
    from aprior.models.engine import resolve_device
    from aprior.models.normalisation import ZScoreStats

    dev = resolve_device(device)
    cfg = DACNO2Config.preset(preset)
    spec = DataSpec(patch=cfg.patch)
    grid = domain_grid(2000)
    tiling = spec.tiling()
    patches = tiling.patches(grid)
    names = ["u10", "v10", "t2m", "d2m", "sp", "blh", "ssrd", "tcc", "tp", *met3d_names(
        spec.pressure_levels_hpa), "emissions", "roads", "population", "nightlight",
        "elevation", "flights"]
    from aprior.inputs.era5 import SINGLE_LEVEL_VARIABLES

    names[:9] = list(SINGLE_LEVEL_VARIABLES)
    stats = ZScoreStats(tuple(names), (0.0,) * len(names), (1.0,) * len(names))
    ratios = LayerRatios(spec.levels_m, tuple(np.exp(-np.asarray(spec.levels_m) / 1500)))
    rng = np.random.default_rng(0)
    ny, nx = grid.shape
    f32 = np.float32
    met2d = rng.standard_normal((24, 9, ny // 8, nx // 8), f32)
    met3d = rng.standard_normal((24, 6, 8, ny // 8, nx // 8), f32)
    emis = rng.standard_normal((4, ny, nx), f32)
    geo = rng.standard_normal((6, ny, nx), f32)
    temporal = rng.standard_normal(3).astype(f32)
    model = DACNO2(cfg).to(dev).eval()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    _sync(dev)
    t0 = time.perf_counter()
    norm = Normaliser(stats, spec.pressure_levels_hpa)
    m2, m3, em, ge = norm.met2d(met2d), norm.met3d(met3d), norm.emis(emis), norm.geo(geo)
    tt = torch.from_numpy(norm.temporal(temporal))

    def cut(a, p, f):
        return torch.from_numpy(np.ascontiguousarray(tiling.extract(a, p, f)))

    items = [{"met2d": cut(m2, p, 8), "met3d": cut(m3, p, 8), "emis": cut(em, p, 1),
              "geo": cut(ge, p, 1), "temporal": tt} for p in patches]
    raw = predict_patches(model, items, device=dev, batch=4)
    _sync(dev)
    t_model = time.perf_counter() - t0
    field = merge_field(raw, tiling, grid, ratios)
    seconds = time.perf_counter() - t0
    out = {"preset": preset, "device": str(dev), "patches": len(patches), "patch": cfg.patch,
           "grid": f"{ny} x {nx}", "field_shape": list(field.shape), "seconds": seconds,
           "model_seconds": t_model}
    if dev.type == "cuda":
        out["cuda_peak_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
    return out


def _child(args) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    if args.case == "params":
        res = case_params()
    elif args.case == "train":
        res = case_train(args.preset, args.device, args.steps, args.micro_batch, args.procs)
    else:
        res = case_infer(args.preset, args.device)
    res.update(case=args.case, wall_s=time.perf_counter() - t0, peak_rss_mb=_peak_mb())
    print("RESULT " + json.dumps(res))


def _run(case: str, *extra: str, threads: int | None) -> dict:
    cmd = [sys.executable, __file__, "--case", case, *extra]
    if threads:
        cmd += ["--threads", str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"case": case, "args": list(extra), "error": (proc.stderr or proc.stdout)[-800:]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", choices=("params", "train", "infer"))
    ap.add_argument("--preset", default="small")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--micro-batch", type=int, default=2)
    ap.add_argument("--procs", type=int, default=1,
                    help="train case on the CPU: DDP processes of one thread each (torchrun-style)")
    ap.add_argument("--devices", default=None, help="comma-separated; default cpu (+cuda if available)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--train-steps", type=int, default=4)
    ap.add_argument("--paper-steps", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if args.case:
        _child(args)
        return
    import torch

    devices = args.devices.split(",") if args.devices else ["cpu"] + (
        ["cuda"] if torch.cuda.is_available() else [])
    results = [_run("params", threads=args.threads)]
    p = results[0]
    for name in ("paper", "medium", "small", "tiny"):
        print(f"parameters {name:>6}: {p[name]['n_params']:>10,}  " + ", ".join(
            f"{k} {v:,}" for k, v in p[name]["parts"].items()))
    for dev in devices:
        for preset, steps, mb in (("small", args.train_steps, 2), ("medium", args.train_steps, 2),
                                  ("paper", args.paper_steps, 1)):
            r = _run("train", "--preset", preset, "--device", dev, "--steps", str(steps),
                     "--micro-batch", str(mb), threads=args.threads)
            results.append(r)
            _show(r)
        if dev == "cpu" and args.procs > 1:  # every core busy: one-thread DDP processes
            for preset in ("small", "medium"):
                r = _run("train", "--preset", preset, "--device", "cpu", "--steps", str(args.train_steps),
                         "--micro-batch", "2", "--procs", str(args.procs), threads=None)
                results.append(r)
                _show(r)
        for preset in ("paper", "small"):
            r = _run("infer", "--preset", preset, "--device", dev, threads=args.threads)
            results.append(r)
            _show(r)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)


def _show(r: dict) -> None:
    if "error" in r:
        print(f"{r['case']} {' '.join(r['args'])}: FAILED\n{r['error']}")
        return
    gpu = f", CUDA peak {r['cuda_peak_mb']:.0f} MB" if "cuda_peak_mb" in r else ""
    if r["case"] == "train":
        procs = f" x {r['procs']} DDP processes" if r.get("procs", 1) > 1 else ""
        print(f"train {r['preset']:>5} on {r['device']}{procs}: {r['samples_per_second']:.3g} samples/s "
              f"({r['steps']} steps of {r['micro_batch']}, amp {r['amp']}), peak RSS "
              f"{r['peak_rss_mb']:.0f} MB{gpu}")
    else:
        print(f"infer {r['preset']:>5} on {r['device']}: full domain {r['grid']} cells, "
              f"{r['patches']} patches of {r['patch']}: {r['seconds']:.2f} s (network "
              f"{r['model_seconds']:.2f} s), peak RSS {r['peak_rss_mb']:.0f} MB{gpu}")


if __name__ == "__main__":
    main()
