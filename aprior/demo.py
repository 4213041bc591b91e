"""``aprior demo``: the main job end to end on the bundled synthetic world.

1. generate the DACNO2-S5P field (11-13 UTC mean, 2 km, 8 levels) for each orbit day of
   the world (or the days asked for) with the bundled demo weights (trained on a
   SYNTHETIC world);
2. reprocess each day's S5P orbits with it, and with the CAMS-like field of the world;
3. compare the columns: DACNO2 against CAMS, each against TM5, and every column against
   the synthetic truth, which no real-data study can do (the closed loop: on days the
   weights never trained or validated on, which the summary says);
4. return where the report is and the summary lines.

Everything is written into a temporary directory next to ``out`` and renamed at the end,
so a failed run leaves nothing behind.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aprior._io import atomic_path, make_staging_dir, probe_writable
from aprior.errors import InputFileError, OutputExistsError
from aprior.interrupts import deferred

log = logging.getLogger(__name__)

#: called with (step number, number of steps, what is being done)
Progress = Callable[[int, int, str], None]
STEPS = 4


@dataclass(frozen=True)
class DemoConfig:
    """What the demo runs on.

    Attributes:
        out: the output directory (new; an existing one needs ``overwrite``).
        dates: the demo days (each must have an S5P orbit in the world); empty for every
            orbit day of the world.
        world: a synthetic world directory; None for the bundled ``fixtures/world``.
        weights: DACNO2 weights; None for the bundled demo weights.
        device: torch device for the generation ("auto", "cpu", "cuda").
        overwrite: replace an existing ``out``.
        command: the command line, recorded in every output's provenance.
    """

    out: Path = Path("aprior-demo")
    dates: tuple[dt.date, ...] = ()
    world: Path | None = None
    weights: Path | None = None
    device: str = "auto"
    overwrite: bool = False
    command: str = "aprior demo"


@dataclass
class DemoResult:
    """What the demo made.

    Attributes:
        out: the output directory.
        report: the HTML report.
        profiles: the generated DACNO2-S5P profile files, one per day.
        reprocessed: a-priori name -> reprocessed L2 files.
        summary: the three summary lines.
        seconds: step name -> wall seconds.
    """

    out: Path
    report: Path
    profiles: list[Path]
    reprocessed: dict[str, list[Path]] = field(default_factory=dict)
    summary: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
        raise OutputExistsError(f"{out}: exists; pass --overwrite to replace it")


def run_demo(config: DemoConfig = DemoConfig(), progress: Progress | None = None) -> DemoResult:
    """Run the demo (see the module docstring); returns a :class:`DemoResult`."""
    from aprior.a_priori.cams_eu import read_cams_eu
    from aprior.compare.api import CompareConfig, compare
    from aprior.inputs.world import open_world
    from aprior.models.dacno2.closed_loop import trained_days
    from aprior.models.dacno2.generate import generate_day, write_profile
    from aprior.models.dacno2.predict import load_trained
    from aprior.plugins import SENSORS, find
    from aprior.resources import bundled_world
    from aprior.retrieval.reprocess import ReprocessConfig, reprocess_file

    say = progress or (lambda i, n, what: None)
    out = Path(config.out)
    _check_out(out, config.overwrite)
    world = open_world(config.world or bundled_world())
    by_day: dict[str, list[Path]] = {}
    for e in world.manifest["files"]:
        if e["kind"] == "s5p_l2_no2":
            by_day.setdefault(e["date"], []).append(world.root / e["path"])
    days = [d.isoformat() for d in config.dates] or sorted(by_day)
    cams_files = world.dated("cams_eu_no2")
    for day in days:
        if day not in by_day or day not in cams_files:
            raise InputFileError(f"has no S5P orbit or CAMS-like file for {day}", world.root)
    trained = load_trained(config.weights, config.device)
    used = {d.isoformat() for d in trained_days(trained.metadata)}
    truth_dir = world.root / "truth" / "s5p"

    out.parent.mkdir(parents=True, exist_ok=True)
    probe_writable(out.parent)
    tmp = make_staging_dir(out)
    seconds: dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        (tmp / "profiles").mkdir()
        fields, profiles = {}, []
        for k, day in enumerate(days):
            say(1, STEPS, f"generating the DACNO2-S5P field for {day} ({k + 1}/{len(days)})")
            date = dt.date.fromisoformat(day)
            fields[day] = generate_day(date, data=world.root, weights=trained, device=config.device)
            profiles.append(write_profile(tmp / "profiles" / f"dacno2_s5p_{date:%Y%m%d}.nc", fields[day]))
        seconds["generate"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        orbits = [o for day in days for o in by_day[day]]
        say(2, STEPS, f"reprocessing {len(orbits)} orbit(s) with the DACNO2 and CAMS-like a-prioris")
        rcfg = ReprocessConfig()
        reprocessed: dict[str, list[Path]] = {"dacno2": [], "cams": []}
        for day in days:
            day_fields = {"dacno2": fields[day], "cams": read_cams_eu(cams_files[day])}
            for name, profile_field in day_fields.items():
                for orbit in by_day[day]:
                    target = tmp / "reprocessed" / name / orbit.name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    sensor = find(SENSORS, orbit, None)
                    reprocess_file(orbit, target, profile_field, sensor, rcfg, command=config.command)
                    reprocessed[name].append(target)
        seconds["reprocess"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        say(3, STEPS, "comparing the columns (DACNO2, CAMS-like, TM5, truth)")
        ccfg = CompareConfig(label="DACNO2-S5P", against_label="CAMS-like", command=config.command,
                             regions=("domain", "northern", "demo"))
        result = compare(reprocessed["dacno2"], tmp / "report", ccfg, against=reprocessed["cams"],
                         truth=[truth_dir] if truth_dir.is_dir() else None)
        seconds["compare"] = time.perf_counter() - t0
        loop = _closed_loop_line(orbits, reprocessed, truth_dir, days, used,
                                 [day for day in days for _ in by_day[day]])
        say(4, STEPS, "done")

        _relocate_provenance(tmp, out)
        with deferred():  # the old output goes and the new one comes in together
            if out.exists():
                shutil.rmtree(out) if out.is_dir() else out.unlink()
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

    def moved(p: Path) -> Path:
        return out / p.relative_to(tmp)

    return DemoResult(out=out, report=moved(Path(result.report)), profiles=[moved(p) for p in profiles],
                      reprocessed={k: [moved(p) for p in v] for k, v in reprocessed.items()},
                      summary=list(result.summary_lines()) + loop, seconds=seconds)


def _relocate_provenance(tmp: Path, out: Path) -> None:
    """Point the paths recorded in the text outputs (stats, report) at where they will live:
    the staging directory's name, unique to this run, becomes ``out``."""
    for path in tmp.rglob("*"):
        if path.suffix in (".json", ".html", ".csv") and path.is_file():
            text = path.read_text(encoding="utf-8")
            if str(tmp) in text:
                with atomic_path(path) as t:
                    t.write_text(text.replace(str(tmp), str(out)), encoding="utf-8")


def _closed_loop_line(orbits: list[Path], reprocessed: dict[str, list[Path]], truth_dir: Path,
                      days: list[str], used: set[str], orbit_days: list[str]) -> list[str]:
    """MARE of the retrieved column against the true one, per a-priori (``aprior evaluate
    --closed-loop`` gives the full table), and whether the days were held out."""
    from aprior.models.dacno2.closed_loop import file_scores

    if not truth_dir.is_dir():
        return []
    rows, n, diffs = file_scores(orbits, {"CAMS-like": reprocessed["cams"], "DACNO2-S5P": reprocessed["dacno2"]},
                                 truth_dir, days=orbit_days)
    get = {(r["apriori"], r["subset"]): r for r in rows}
    parts = [f"{name} {get[(name, 'all')]['mare_pct']:.1f} % (polluted tercile "
             f"{get[(name, 'polluted')]['mare_pct']:.1f} %)" for name in ("TM5", "CAMS-like", "DACNO2-S5P")]
    seen = sorted(set(days) & used)
    months = sorted({int(d[5:7]) for d in days})
    held = ("all held out from the weights' training and validation" if not seen else
            f"NOT held out: {', '.join(seen)} "
            + ("is a training or validation day" if len(seen) == 1 else "are training or validation days")
            + " of the weights")
    return [f"closed loop, MARE of the column against the SYNTHETIC truth ({n} pixels, {len(orbits)} "
            f"orbit(s) on {len(days)} day(s), months {', '.join(map(str, months))}; {held}): "
            + ", ".join(parts)
            + "".join(f"; DACNO2-S5P below CAMS-like on {d['days_better']} of {d['n_days']} day(s)"
                      for d in diffs if d["apriori"] == "DACNO2-S5P" and d["subset"] == "all")]
