"""Reprocess many L2 files, in parallel worker processes through dask.distributed.

HDF5 is not thread-safe, so workers are processes with one thread each: a local
cluster of ``workers`` processes, or an existing cluster at ``scheduler``. One bad file
does not stop the others: each file's outcome is a :class:`FileResult`.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from aprior import plugins
from aprior._io import check_output
from aprior.a_priori.sources import open_profile_field_cached
from aprior.errors import AprioriError, InputFileError
from aprior.retrieval.reprocess import FileSummary, ReprocessConfig, reprocess_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """One file to reprocess and the inputs it needs (paths only: jobs travel to workers)."""

    input: str
    output: str
    profiles: str
    config: ReprocessConfig
    upper_profiles: str | None = None
    pm25: str | None = None
    command: str = "aprior reprocess"
    temperature: str | None = None


@dataclass(frozen=True)
class FileResult:
    """The outcome of one job: a summary, or the one-line error."""

    input: str
    output: str
    summary: FileSummary | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def expand_inputs(patterns: Iterable[str]) -> list[Path]:
    """Expand globs (also when the shell did not), keep order, drop duplicates.

    A pattern that matches nothing is an error naming it.
    """
    out: list[Path] = []
    seen = set()
    for pat in patterns:
        hits = sorted(glob.glob(pat)) if glob.has_magic(pat) else [pat]
        if not hits:
            raise InputFileError("no file matches this pattern", pat)
        for h in hits:
            key = os.path.abspath(h)
            if key not in seen:
                seen.add(key)
                out.append(Path(h))
    return out


def plan_outputs(inputs: Sequence[Path], out: Path, *, overwrite: bool = False) -> list[tuple[Path, Path]]:
    """Pair inputs with outputs, checking every output before any work is done.

    One input and ``out`` not an existing directory: ``out`` is the output file. Otherwise
    ``out`` is a directory (created if missing) that receives files of the same names;
    it must not be an input's own directory (an input is never overwritten), and two
    inputs of the same name (from different directories) are refused: only one of them
    could be kept. Each output must be absent (or ``overwrite``) and writable.

    Raises:
        InputFileError: a missing input, a collision, an input's own directory.
        AprioriError: an output that exists or cannot be written.
    """
    for p in inputs:
        if not p.exists():
            raise InputFileError("does not exist", p)
    if len(inputs) == 1 and not out.is_dir() and out.suffix:
        return [(inputs[0], check_output(out, overwrite=overwrite, inputs=(inputs[0],)))]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AprioriError(f"cannot create the output directory: {exc.strerror or exc}", out) from None
    by_name: dict[str, Path] = {}
    pairs = []
    for p in inputs:
        if p.resolve().parent == out.resolve():
            raise InputFileError("the output directory is this input's own directory; choose another", p)
        if p.name in by_name:
            raise InputFileError(f"has the same file name as {by_name[p.name]}; both would be "
                                 f"written to {out / p.name}; reprocess them in separate runs "
                                 "or into separate directories", p)
        by_name[p.name] = p
        pairs.append((p, check_output(out / p.name, overwrite=overwrite, inputs=(p,))))
    return pairs


def run_job(job: Job) -> FileResult:
    """Run one job; user-caused errors become the result's one-line error."""
    try:
        fld = open_profile_field_cached(job.profiles, job.config.profile_source)
        upper = open_profile_field_cached(job.upper_profiles) if job.upper_profiles else None
        pm25 = None
        if job.pm25:
            from aprior.inputs.pm25 import open_pm25

            pm25 = open_pm25(job.pm25)
        temperature = None
        if job.temperature:
            from aprior.inputs.temperature import read_era5_temperature

            temperature = read_era5_temperature(job.temperature)
        sensor = plugins.find(plugins.SENSORS, job.input, job.config.sensor)
        summary = reprocess_file(job.input, job.output, fld, sensor, job.config, upper=upper,
                                 pm25=pm25, temperature=temperature, command=job.command,
                                 aux_paths={k: v for k, v in (("temperature", job.temperature),
                                                              ("pm25", job.pm25),
                                                              ("upper_profiles", job.upper_profiles)) if v})
        return FileResult(job.input, job.output, summary=summary)
    except AprioriError as exc:  # one line, even when it wraps a library's message
        return FileResult(job.input, job.output, error=" ".join(str(exc).split()))
    except OSError as exc:
        return FileResult(job.input, job.output, error=f"{job.input}: {exc.strerror or exc}")


def run_jobs(
    jobs: Sequence[Job],
    *,
    workers: int = 1,
    scheduler: str | None = None,
    on_result: Callable[[FileResult], None] | None = None,
) -> list[FileResult]:
    """Run ``jobs``; in this process when ``workers == 1`` and no scheduler, else on dask.

    Results come back in completion order through ``on_result`` and are returned in the
    order of ``jobs``.
    """
    results: dict[int, FileResult] = {}

    def done(i: int, r: FileResult) -> None:
        results[i] = r
        if on_result is not None:
            on_result(r)

    if scheduler is None and (workers <= 1 or len(jobs) <= 1):
        for i, job in enumerate(jobs):
            done(i, run_job(job))
        return [results[i] for i in range(len(jobs))]

    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        n = max(1, min(workers, len(jobs)))
        log.info("starting a local dask cluster of %d worker processes", n)
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise AprioriError(f"cannot reach the dask scheduler at {scheduler}: {exc}") from None
    try:
        futures = {client.submit(run_job, job, pure=False): i for i, job in enumerate(jobs)}
        for fut in as_completed(futures):
            i = futures[fut]
            try:
                r = fut.result()
            except Exception as exc:  # a worker died or raised something unexpected
                r = FileResult(jobs[i].input, jobs[i].output, error=f"{jobs[i].input}: worker failed: {exc}")
            done(i, r)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return [results[i] for i in range(len(jobs))]
