"""Training one DACNO2 phase: options, the prepared cache, the task, the engine.

:func:`train_phase` is what ``aprior train --phase N`` runs. Settings come, in order of
precedence, from explicit options (``overrides``), the ``--config`` TOML file, the phase's
defaults and :class:`~aprior.models.engine.TrainSettings`. The TOML file has up to four
tables::

    [train]   TrainSettings fields (epochs, batch_size, micro_batch, lr, device, ...)
    [model]   DACNO2Config fields, changing the preset
    [data]    DataSpec fields (variant, levels_m, stride, test_year, ...)
    [phase]   PhaseConfig fields (loss weights, lr_factor, phase3_val_fraction, phase3_eval_layers)

Phase defaults: phase 1 trains with the settings' learning rate; phases 2 and 3 with phase
1's learning rate times ``lr_factor`` (0.1), and take the predecessor's network
configuration and data spec (giving different ones is an error). Phase 3 defaults to 100
epochs (the paper's), phases 1 and 2 to 200.

The prepared cache lives under ``cache_dir`` (default ``$XDG_CACHE_HOME/aprior``, else
``~/.cache/aprior``) in a sub-directory keyed by the data's identity and the spec, so
several data sets and specs coexist and the data directory is never written to.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aprior._io import atomic_path
from aprior.config import load_toml
from aprior.errors import ConfigError
from aprior.models import distributed as dist_
from aprior.models.checkpoint import load_checkpoint
from aprior.models.dacno2.catalog import DataCatalog, open_catalog
from aprior.models.dacno2.config import DACNO2Config
from aprior.models.dacno2.phases import (
    PhaseConfig,
    PhaseTask,
    Predecessor,
    check_phase,
    load_predecessor,
)
from aprior.models.dacno2.prepare import DataSpec, Prepared, prepare
from aprior.models.engine import TrainResult, TrainSettings, check_run_dir, train

log = logging.getLogger(__name__)

TABLES = ("train", "model", "data", "phase")
PHASE3_EPOCHS = 100
_RANK_WAIT_S = 6 * 3600.0


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/aprior``, else ``~/.cache/aprior``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "aprior"


@dataclass(frozen=True)
class ConfigTables:
    """The tables of a training TOML file (empty when absent)."""

    train: dict = field(default_factory=dict)
    model: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    phase: dict = field(default_factory=dict)
    source: str | None = None


def read_config(path: str | os.PathLike[str] | None) -> ConfigTables:
    """Read ``--config``; unknown tables or non-table values are a ConfigError."""
    if path is None:
        return ConfigTables()
    doc = load_toml(path)
    unknown = sorted(set(doc) - set(TABLES))
    if unknown:
        raise ConfigError(f"unknown table(s) {', '.join(unknown)}; expected "
                          f"{', '.join(f'[{t}]' for t in TABLES)}", path)
    for name, value in doc.items():
        if not isinstance(value, dict):
            raise ConfigError(f"{name} must be a table ([{name}])", path)
    return ConfigTables(**{k: dict(doc.get(k, {})) for k in TABLES}, source=str(path))


def _with_source(exc: ConfigError, source: str | None) -> ConfigError:
    return ConfigError(exc.message, exc.path or source)


def model_config(preset: str | None, table: Mapping, predecessor: Predecessor | None,
                 source: str | None = None, recorded: Mapping | None = None
                 ) -> tuple[DACNO2Config, str]:
    """The network configuration and its label: on resume the run's own (``recorded``,
    its checkpoint's metadata), else the predecessor's for phases 2/3 (unless a preset or
    ``[model]`` is given), else the preset (default "paper") changed by ``[model]``."""
    for meta in (recorded, predecessor.metadata if predecessor is not None else None):
        if meta and "config" in meta and preset is None and not table:
            return DACNO2Config.from_dict(meta["config"]), str(meta.get("preset", "custom"))
    name = preset or "paper"
    base = DACNO2Config.preset(name)
    if not table:
        return base, name
    try:
        return DACNO2Config.from_dict({**base.to_dict(), **table}), f"{name}+custom"
    except ConfigError as exc:
        raise _with_source(exc, source) from None


def data_spec(config: DACNO2Config, table: Mapping, predecessor: Predecessor | None,
              source: str | None = None) -> DataSpec:
    """The data spec: the predecessor's for phases 2/3, else the defaults with the
    network's patch size; ``[data]`` changes either."""
    base = (DataSpec.from_dict(predecessor.metadata["spec"]) if predecessor is not None
            else DataSpec(patch=config.patch))
    if not table:
        return base
    try:
        return DataSpec.from_dict({**base.to_dict(), **table})
    except ConfigError as exc:
        raise _with_source(exc, source) from None


def train_settings(phase: int, tables: ConfigTables, overrides: Mapping[str, Any],
                   predecessor: Predecessor | None, options: PhaseConfig) -> TrainSettings:
    """Defaults < phase defaults < ``[train]`` < explicit ``overrides``."""
    values: dict[str, Any] = {}
    if phase > 1:
        base = predecessor.base_lr if predecessor and predecessor.base_lr else TrainSettings().lr
        values["lr"] = base * options.lr_factor
    if phase == 3:
        values["epochs"] = PHASE3_EPOCHS
    values.update(tables.train)
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return TrainSettings.from_mapping(values)
    except ConfigError as exc:
        raise _with_source(exc, tables.source if set(tables.train) else None) from None


def cache_key(catalog: DataCatalog, spec: DataSpec) -> str:
    """A short digest of the data's identity (not its location) and the spec."""
    ident = {k: v for k, v in catalog.identity().items() if k != "root"}
    text = json.dumps({"catalog": ident, "spec": spec.to_dict()}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def prepared_data(catalog: DataCatalog, spec: DataSpec, cache_dir: str | os.PathLike[str] | None
                  = None, *, progress: Callable[[str, int, int], None] | None = None) -> Prepared:
    """The prepared cache of ``catalog`` for ``spec`` (made on first use, then reused)."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = root / "dacno2-prepared" / cache_key(catalog, spec)
    info = dist_.env_info()
    if info.enabled and not info.is_main:  # under torchrun rank 0 prepares, the others wait
        waited = 0.0
        while not (target / "meta.json").is_file():
            if waited > _RANK_WAIT_S:
                raise ConfigError("rank 0 did not finish preparing the data in time", target)
            time.sleep(2.0)
            waited += 2.0
        progress = None
    return prepare(catalog, spec, target, progress=progress)


def trained_on(catalog: DataCatalog) -> str:
    """What the data are, for metadata; says SYNTHETIC for a synthetic world."""
    if catalog.synthetic:
        return (f"SYNTHETIC world ({catalog.region}, seed {catalog.seed}) made by 'aprior synth'; "
                "not real data, its skill is not real-world skill")
    return f"data directory {catalog.root} ({catalog.region})"


def _recorded_metadata(run_dir: Path, resume: bool) -> dict | None:
    """On resume, the metadata of the run's ``last.pt`` (its network, its predecessor)."""
    last = run_dir / "last.pt"
    return load_checkpoint(last)["metadata"] if resume and last.is_file() else None


def write_metrics_csv(metrics_jsonl: Path) -> Path | None:
    """``metrics.csv`` beside ``metrics.jsonl`` (parts flattened as ``train_<part>``)."""
    if not metrics_jsonl.is_file():
        return None
    rows = [json.loads(line) for line in metrics_jsonl.read_text().splitlines() if line.strip()]
    flat = []
    for r in rows:
        out = {k: v for k, v in r.items() if not isinstance(v, dict)}
        for side in ("train", "val"):
            out.update({f"{side}_{k}": v for k, v in (r.get(f"{side}_parts") or {}).items()})
        flat.append(out)
    keys = list(dict.fromkeys(k for r in flat for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    target = metrics_jsonl.with_suffix(".csv")
    with atomic_path(target) as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8")
    return target


def train_phase(phase: int, data: str | os.PathLike[str], run_dir: str | os.PathLike[str], *,
                preset: str | None = None, config_path: str | os.PathLike[str] | None = None,
                settings: TrainSettings | None = None, overrides: Mapping[str, Any] | None = None,
                from_: str | os.PathLike[str] | None = None,
                cache_dir: str | os.PathLike[str] | None = None, resume: bool = False,
                progress: Callable[[dict], None] | None = None,
                prepare_progress: Callable[[str, int, int], None] | None = None,
                command: str | None = None) -> TrainResult:
    """Train DACNO2 phase ``phase`` on ``data``, writing the run to ``run_dir``.

    Args:
        phase: 1, 2 or 3.
        data: a synthetic world or a real-data directory
            (:func:`~aprior.models.dacno2.catalog.open_catalog`).
        run_dir: new or empty directory (or the run to resume).
        preset: network preset; default the predecessor's (phases 2/3) or "paper".
        config_path: TOML with ``[train]``, ``[model]``, ``[data]``, ``[phase]`` tables.
        settings: complete engine settings (then the TOML ``[train]`` table and the phase
            defaults are ignored); else they are resolved as in the module docstring.
        overrides: explicit ``TrainSettings`` fields (the CLI's options; None values ignored).
        from_: the predecessor's run directory or weights file (phases 2 and 3; phase 1:
            an optional warm start from another phase-1 run).
        cache_dir: the prepared-data cache root (see :func:`default_cache_dir`).
        resume: continue the run in ``run_dir`` (``from_`` defaults to the recorded one).
        progress: engine progress callback; ``prepare_progress(what, done, total)`` for the
            data preparation.
        command: the command line, recorded in the weights' metadata (``training.command``).

    Raises:
        ConfigError: bad options; a phase without (or with a mismatched) predecessor.
        InputFileError: missing or unreadable inputs for a date.
        OutputExistsError: ``run_dir`` not empty without ``resume``.
    """
    check_phase(phase)
    run_dir = Path(run_dir)
    check_run_dir(run_dir, resume)  # before any long preparation
    tables = read_config(config_path)
    try:
        options = PhaseConfig(**tables.phase)
    except TypeError as exc:
        raise ConfigError(f"invalid [phase] table: {exc}", config_path) from None
    except ConfigError as exc:  # a bad value: name the file it came from
        raise _with_source(exc, tables.source) from None
    recorded = _recorded_metadata(run_dir, resume)
    if from_ is None and recorded is not None:  # --from defaults to the recorded predecessor
        from_ = (recorded.get("predecessor") or {}).get("path")
    predecessor = load_predecessor(phase, from_)
    config, label = model_config(preset, tables.model, predecessor, tables.source, recorded)
    spec = data_spec(config, tables.data, predecessor, tables.source)
    if settings is None:
        settings = train_settings(phase, tables, overrides or {}, predecessor, options)
    catalog = open_catalog(data)
    prepared = prepared_data(catalog, spec, cache_dir, progress=prepare_progress)
    base_lr = settings.lr if phase == 1 else (predecessor.base_lr or settings.lr / options.lr_factor)
    task = PhaseTask(phase, prepared, config, preset=label, predecessor=predecessor,
                     options=options, base_lr=base_lr, trained_on=trained_on(catalog))
    log.info("DACNO2 phase %d (%s): %d training and %d validation days, lr %g", phase, label,
             len(task.train_days), len(task.val_days), settings.lr)
    result = train(task, settings, run_dir, resume=resume, progress=progress, command=command)
    if dist_.env_info().is_main:
        write_metrics_csv(result.metrics_path)
    return result


__all__ = ["ConfigTables", "default_cache_dir", "prepared_data", "read_config", "train_phase",
           "train_settings", "trained_on"]
