"""Benchmark of the vertical step for every kind of profile field.

Times, for ``--pixels`` footprint-mean profiles (200,000 by default, a busy orbit over a
regional field), the conversion to the 34 TM5 partial columns
(:func:`aprior.retrieval.vertical_fields.tm5_partial_columns`) of:

- heights8:      8 heights above ground, ug m-3 (DACNO2, CAMS Europe)
- heights8_vmr:  the same as mole fractions (air density from the standard atmosphere)
- hybrid_L60:    IFS L60 hybrid levels, mol mol-1 (EAC4)
- hybrid_L137:   IFS L137 hybrid levels, mol mol-1 (CAMS forecasts)
- pressure_3d40: 40 layers with per-pixel interface pressures (WRF, LOTOS-EUROS)

and the model columns (:func:`aprior.retrieval.amf.model_columns`). Wall time of the best of
``--repeat`` runs, one process, no threads beyond numpy's.

Usage: python benchmarks/bench_model_fields.py [--pixels N] [--repeat R]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from aprior.a_priori.cams_global import ecmwf_levels
from aprior.retrieval.amf import model_columns
from aprior.retrieval.vertical_fields import ColumnProfiles, tm5_partial_columns
from aprior.synth.s5p import l2 as syn


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pixels", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    n = args.pixels
    rng = np.random.default_rng(0)
    a, b = syn.tm5_hybrid_coefficients()
    ps = 100_000.0 + 2000.0 * rng.standard_normal(n)
    heights = np.array([0, 50, 250, 500, 1000, 2000, 3000, 5000.0])
    cases = {
        "heights8": ColumnProfiles(rng.uniform(1, 40, (n, 8)), "mass_concentration", heights=heights),
        "heights8_vmr": ColumnProfiles(rng.uniform(1e-9, 2e-8, (n, 8)), "mole_fraction", heights=heights),
    }
    for nlev in (60, 137):
        ah, bh = ecmwf_levels()[nlev]
        p = ah[::-1][None, :] + bh[::-1][None, :] * ps[:, None]
        cases[f"hybrid_L{nlev}"] = ColumnProfiles(rng.uniform(1e-10, 2e-8, (n, nlev)), "mole_fraction",
                                                  pressure=p)
    p3 = ps[:, None] * np.linspace(1.0, 0.05, 41)[None, :] ** 1.3
    cases["pressure_3d40"] = ColumnProfiles(rng.uniform(1e-10, 2e-8, (n, 40)), "mole_fraction", pressure=p3)
    print(f"{n:,} pixels, best of {args.repeat}")
    x = None
    for name, prof in cases.items():
        t = _best(lambda prof=prof: tm5_partial_columns(prof, ps, a, b), args.repeat)
        print(f"  {name:14s} {t:7.2f} s  {n / t:12,.0f} pixels/s")
        x = tm5_partial_columns(prof, ps, a, b)
    ak = rng.uniform(0.2, 2.0, (n, 34))
    t = _best(lambda: model_columns(ak, np.full(n, 2.0), np.full(n, 1.2), np.full(n, 17), x), args.repeat)
    print(f"  {'model_columns':14s} {t:7.2f} s  {n / t:12,.0f} pixels/s")


if __name__ == "__main__":
    main()
