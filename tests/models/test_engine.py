"""Tests of the generic trainer and the checkpoint files, on a tiny regression task."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import random
import socket
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from aprior.errors import ConfigError, InputFileError, OutputExistsError
from aprior.models import distributed as dist_
from aprior.models.checkpoint import (
    load_checkpoint,
    load_weights,
    rng_state,
    save_weights,
    set_rng_state,
    weights_hash,
)
from aprior.models.engine import (
    TrainingDiverged,
    TrainResult,
    TrainSettings,
    TrainTask,
    amp_enabled,
    resolve_device,
    train,
)


class DictDataset(torch.utils.data.Dataset):
    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[i], "y": self.y[i]}


class TinyTask:
    """y = x @ w + noise; an MLP, optionally with dropout and random input jitter."""

    def __init__(self, n_train: int = 24, n_val: int = 8, dropout: float = 0.0, jitter: bool = False,
                 name: str = "tiny", constant_val: bool = False, nan_at: int | None = None) -> None:
        g = torch.Generator().manual_seed(1234)
        w = torch.randn(4, 1, generator=g)
        x = torch.randn(n_train + n_val, 4, generator=g)
        y = x @ w + 0.01 * torch.randn(n_train + n_val, 1, generator=g)
        self.train_set, self.val_set = DictDataset(x[:n_train], y[:n_train]), DictDataset(x[n_train:], y[n_train:])
        self.dropout, self.jitter, self.name = dropout, jitter, name
        self.constant_val, self.nan_at, self.calls = constant_val, nan_at, 0
        self.init: dict[str, torch.Tensor] | None = None

    def build_model(self) -> nn.Module:
        return nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Dropout(self.dropout), nn.Linear(16, 1))

    def train_dataset(self):
        return self.train_set

    def val_dataset(self):
        return self.val_set

    def loss(self, model, batch):
        x = batch["x"]
        if self.jitter:  # uses the numpy and python global generators: their states must be restored
            x = x + 0.05 * random.random() * torch.from_numpy(np.random.standard_normal(x.shape)).float()
        self.calls += 1
        if self.nan_at is not None and self.calls >= self.nan_at:
            x = x * float("nan")
        loss = F.mse_loss(model(x), batch["y"])
        return loss, {"mse": loss.item()}

    def val_loss(self, model, batch):
        loss = F.mse_loss(model(batch["x"]), batch["y"])
        if self.constant_val:
            loss = loss * 0 + 1.0
        return loss, {"mse": loss.item()}

    def metadata(self):
        return {"model": "tiny-mlp", "preset": "tiny", "config": {"hidden": 16, "levels": (0.0, 50.0)}}

    def initial_state(self):
        return self.init


FAST = TrainSettings(epochs=3, batch_size=4, micro_batch=2, lr=0.02, weight_decay=0.0, device="cpu")


def weights_of(path: Path) -> dict[str, torch.Tensor]:
    return load_weights(path)[0]


def last_weights(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run / "last.pt")["model"]


def assert_state_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_task_satisfies_protocol():
    assert isinstance(TinyTask(), TrainTask)


def test_training_reduces_loss_and_writes_files(tmp_path):
    events: list[dict] = []
    settings = replace(FAST, epochs=6, lr=0.03)
    res = train(TinyTask(), settings, tmp_path / "run", progress=events.append)
    assert isinstance(res, TrainResult)
    for p in (res.best_path, res.last_path, res.weights_path, res.metrics_path):
        assert p.is_file() and p.parent == tmp_path / "run"
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.startswith(".")]  # no temp files left
    lines = [json.loads(s) for s in res.metrics_path.read_text().splitlines()]
    assert [r["epoch"] for r in lines] == list(range(1, 7))
    for key in ("train_loss", "val_loss", "train_parts", "val_parts", "lr", "seconds",
                "samples_per_second", "best"):
        assert key in lines[0]
    assert lines[-1]["train_loss"] < 0.25 * lines[0]["train_loss"]
    assert lines[-1]["val_loss"] < lines[0]["val_loss"]
    assert lines[0]["train_parts"]["mse"] == pytest.approx(lines[0]["train_loss"], rel=1e-6)
    assert res.epochs_run == 6 and res.samples_per_second > 0
    best = min(lines, key=lambda r: r["val_loss"])
    assert res.best_epoch == best["epoch"] and res.best_val == pytest.approx(best["val_loss"])
    assert sum(r["best"] for r in lines) >= 1 and lines[0]["best"]
    # weights.pt: the best weights with our metadata
    state, meta = load_weights(res.weights_path)
    assert_state_equal(state, load_checkpoint(res.best_path)["model"])
    assert meta["format"] == "aprior-weights" and meta["model"] == "tiny-mlp" and meta["preset"] == "tiny"
    assert meta["config"] == {"hidden": 16, "levels": [0.0, 50.0]}
    assert "aprior_version" in meta and meta["created"].endswith("+00:00")
    assert meta["training"]["best_epoch"] == res.best_epoch
    # progress: 6 epochs x 12 micro-batches of steps, then one epoch event each
    steps = [e for e in events if e["event"] == "step"]
    ends = [e for e in events if e["event"] == "epoch"]
    assert len(steps) == 6 * 12 and steps[0]["steps"] == 12 and steps[-1]["epoch"] == 6
    assert {"epoch", "epochs", "step", "steps", "loss"} <= steps[0].keys()
    assert len(ends) == 6 and {"train_loss", "val_loss", "best"} <= ends[0].keys()


def test_accumulation_matches_one_big_batch(tmp_path):
    # 10 samples: micro 1 x 4 (+ a partial step of 2) == micro 4 (4, 4, 2); micro 3 x 2 == micro 6
    task = TinyTask(n_train=10)
    runs = {}
    for name, bs, mb in (("a", 4, 1), ("b", 4, 4), ("c", 6, 3), ("d", 6, 6)):
        s = replace(FAST, epochs=2, batch_size=bs, micro_batch=mb, lr=0.05)
        runs[name] = last_weights(train(task, s, tmp_path / name).run_dir)
    for x, y in (("a", "b"), ("c", "d")):
        for k in runs[x]:
            torch.testing.assert_close(runs[x][k], runs[y][k], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(runs["a"]["0.weight"], runs["c"]["0.weight"])  # steps do differ


class Killed(Exception):
    pass


def kill_at(epoch: int):
    def progress(event: dict) -> None:
        if event["event"] == "step" and event["epoch"] == epoch and event["step"] == 2:
            raise Killed
    return progress


def test_exact_resume_is_bit_identical(tmp_path):
    settings = replace(FAST, epochs=4, lr_schedule="cosine", batch_size=6, micro_batch=2)
    full = train(TinyTask(dropout=0.3, jitter=True), settings, tmp_path / "full")
    with pytest.raises(Killed):
        train(TinyTask(dropout=0.3, jitter=True), settings, tmp_path / "cut", progress=kill_at(3))
    assert load_checkpoint(tmp_path / "cut" / "last.pt")["epoch"] == 2
    # the other generators moved on in this process since: resume must restore them
    torch.manual_seed(999)
    np.random.seed(999)
    random.seed(999)
    cut = train(TinyTask(dropout=0.3, jitter=True), settings, tmp_path / "cut", resume=True)
    assert_state_equal(last_weights(full.run_dir), last_weights(cut.run_dir))
    assert_state_equal(weights_of(full.weights_path), weights_of(cut.weights_path))
    assert cut.epochs_run == 4 and cut.best_epoch == full.best_epoch
    drop = ("seconds", "train_seconds", "samples_per_second")
    a = [{k: v for k, v in json.loads(s).items() if k not in drop} for s in full.metrics_path.read_text().splitlines()]
    b = [{k: v for k, v in json.loads(s).items() if k not in drop} for s in cut.metrics_path.read_text().splitlines()]
    assert a == b


def test_resume_finished_run_with_more_epochs(tmp_path):
    s3 = replace(FAST, epochs=3)
    full = train(TinyTask(dropout=0.2), s3, tmp_path / "full")
    train(TinyTask(dropout=0.2), replace(s3, epochs=2), tmp_path / "more")
    again = train(TinyTask(dropout=0.2), replace(s3, epochs=2), tmp_path / "more", resume=True)
    assert again.epochs_run == 2 and again.samples_per_second == 0.0  # nothing left to do
    more = train(TinyTask(dropout=0.2), s3, tmp_path / "more", resume=True)
    assert more.epochs_run == 3
    assert_state_equal(last_weights(full.run_dir), last_weights(more.run_dir))
    assert len(more.metrics_path.read_text().splitlines()) == 3


def test_refusals(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("x")
    with pytest.raises(OutputExistsError, match="--resume") as err:
        train(TinyTask(), FAST, run)
    assert str(run) in str(err.value)
    with pytest.raises(ConfigError, match="last.pt"):
        train(TinyTask(), FAST, tmp_path / "fresh", resume=True)
    done = train(TinyTask(), replace(FAST, epochs=1), tmp_path / "done")
    with pytest.raises(ConfigError, match="task"):
        train(TinyTask(name="other"), replace(FAST, epochs=2), done.run_dir, resume=True)


def test_early_stopping_and_max_batches(tmp_path):
    events: list[dict] = []
    s = replace(FAST, epochs=10, patience=2, max_batches=3)
    res = train(TinyTask(constant_val=True), s, tmp_path / "run", progress=events.append,
                command="aprior train --phase 1")
    assert res.epochs_run == 3 and res.best_epoch == 1  # epoch 1 best, 2 and 3 no better: stop
    training = load_weights(res.weights_path)[1]["training"]
    assert training["command"] == "aprior train --phase 1"
    assert training["budget"]["stopped"] == "patience" and training["budget"]["samples"] == 3 * 6
    assert {e["steps"] for e in events if e["event"] == "step"} == {3}


def test_plateau_schedule_halves_the_rate_and_ends_the_run_when_converged(tmp_path):
    # a constant validation loss: epoch 1 is best, then every 2 epochs a plateau
    s = replace(FAST, epochs=50, lr=0.02, lr_schedule="plateau", plateau_epochs=2,
                plateau_factor=0.5, plateau_reductions=2)
    res = train(TinyTask(constant_val=True), s, tmp_path / "run")
    rows = [json.loads(line) for line in res.metrics_path.read_text().splitlines()]
    assert [r["lr"] for r in rows] == pytest.approx([0.02] * 3 + [0.01] * 2 + [0.005] * 2)
    assert res.epochs_run == 7 and rows[-1]["converged"] and not rows[-2]["converged"]
    # a killed plateau run resumes with its reduced rate and the same end
    with pytest.raises(Killed):
        train(TinyTask(constant_val=True), s, tmp_path / "cut", progress=kill_at(5))
    cut = train(TinyTask(constant_val=True), s, tmp_path / "cut", resume=True)
    again = [json.loads(line) for line in cut.metrics_path.read_text().splitlines()]
    assert [r["lr"] for r in again] == [r["lr"] for r in rows] and cut.epochs_run == 7
    meta = load_weights(res.weights_path)[1]["training"]
    assert meta["budget"]["stopped"] == "converged" and meta["budget"]["epochs_run"] == 7
    assert meta["budget"]["samples"] == 7 * 24
    with pytest.raises(ConfigError, match="plateau_factor"):
        TrainSettings(lr_schedule="plateau", plateau_factor=1.5)


def test_time_limit_ends_the_invocation_and_resume_continues(tmp_path):
    s = replace(FAST, epochs=5, time_limit_s=1e-9)  # every epoch would end past the limit
    res = train(TinyTask(), s, tmp_path / "run")
    assert res.epochs_run == 1  # the first epoch always runs: there is no duration to judge by
    meta = load_weights(res.weights_path)[1]["training"]
    assert meta["budget"]["stopped"] == "time limit" and meta["budget"]["epochs_run"] == 1
    more = train(TinyTask(), replace(s, time_limit_s=None), tmp_path / "run", resume=True)
    assert more.epochs_run == 5
    assert load_weights(more.weights_path)[1]["training"]["budget"]["stopped"] == "epochs"
    with pytest.raises(ConfigError, match="time_limit_s"):
        TrainSettings(time_limit_s=0)


def test_initial_state_is_loaded_and_checked(tmp_path):
    task = TinyTask()
    torch.manual_seed(42)
    start = {k: v.clone() for k, v in task.build_model().state_dict().items()}
    task.init = start
    res = train(task, replace(FAST, epochs=1, lr=1e-12, max_batches=1), tmp_path / "ok")
    for k, v in last_weights(res.run_dir).items():
        torch.testing.assert_close(v, start[k], rtol=0, atol=1e-9)
    task.init = {"0.weight": torch.zeros(3, 3)}
    with pytest.raises(ConfigError, match="initial weights"):
        train(task, FAST, tmp_path / "bad")


def test_divergence_is_reported(tmp_path):
    with pytest.raises(TrainingDiverged, match="epoch 1"):
        train(TinyTask(nan_at=3), FAST, tmp_path / "run")


def test_bf16_autocast_on_cpu_runs(tmp_path):
    res = train(TinyTask(), replace(FAST, epochs=1, amp="bf16"), tmp_path / "run")
    assert np.isfinite(res.best_val)


def test_settings_and_devices():
    with pytest.raises(ConfigError):
        TrainSettings(amp="fp16")
    with pytest.raises(ConfigError):
        TrainSettings(micro_batch=0)
    with pytest.raises(ConfigError):
        TrainSettings(lr_schedule="step")
    with pytest.raises(ConfigError, match="unknown training setting"):
        TrainSettings.from_mapping({"epochs": 3, "learning_rate": 1.0})
    assert TrainSettings.from_mapping({"epochs": 3}).epochs == 3
    assert TrainSettings(batch_size=56, micro_batch=2).accumulation(2) == 14
    assert TrainSettings(batch_size=5, micro_batch=2).accumulation(1) == 3
    s = TrainSettings(lr=1.0, lr_schedule="cosine")
    assert s.lr_at(0.0) == 1.0 and s.lr_at(0.5) == pytest.approx(0.5) and s.lr_at(1.0) == pytest.approx(0.0)
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA"):
            resolve_device("cuda:0")
    assert amp_enabled("auto", torch.device("cpu")) is False
    assert amp_enabled("bf16", torch.device("cpu")) is True
    assert amp_enabled("off", torch.device("cpu")) is False


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_loading_refuses_foreign_files(tmp_path):
    evil = tmp_path / "evil.pt"
    torch.save({"format": "aprior-weights", "payload": Evil()}, evil)
    with pytest.raises(InputFileError, match="not an aprior weights file") as err:
        load_weights(evil)
    assert str(evil) in str(err.value)
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(InputFileError, match="not an aprior weights file"):
        load_weights(plain)
    raw = tmp_path / "raw.pt"
    torch.save({"w": torch.zeros(2)}, raw)  # a bare state dict: safe, but not ours
    with pytest.raises(InputFileError, match="not an aprior weights file"):
        load_checkpoint(raw)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(InputFileError):
        load_weights(junk)
    with pytest.raises(InputFileError, match="does not exist"):
        load_weights(tmp_path / "missing.pt")


def test_weights_round_trip_and_hash(tmp_path):
    state = {"a": torch.arange(3.0), "b.c": torch.ones(2, 2, dtype=torch.float64)}
    path = save_weights(tmp_path / "w.pt", state, {"model": "m", "preset": "p", "config": {"n": 1}})
    got, meta = load_weights(path)
    assert_state_equal(got, state)
    assert meta["model"] == "m" and meta["format"] == "aprior-weights"
    assert weights_hash(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(InputFileError, match="not a training checkpoint"):
        load_checkpoint(path)


def test_rng_state_round_trip_through_safe_file(tmp_path):
    state = rng_state()
    path = tmp_path / "rng.pt"
    torch.save(state, path)
    a = (torch.rand(3), np.random.standard_normal(3), random.random())
    set_rng_state(torch.load(path, weights_only=True))
    b = (torch.rand(3), np.random.standard_normal(3), random.random())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


DDP_SCRIPT = """
import sys
from dataclasses import replace
from pathlib import Path
sys.path.insert(0, {tests!r})
from test_engine import FAST, TinyTask
from aprior.models.engine import train
run = Path(sys.argv[1])
settings = replace(FAST, epochs=1, batch_size=8)
train(TinyTask(dropout=0.1), settings, run)
res = train(TinyTask(dropout=0.1), replace(settings, epochs=2), run, resume=True)
print("EPOCHS", res.epochs_run)
import gc, torch
gc.disable()  # what is left now was left by train(), not yet collected
print("DDP LEFT", sum(isinstance(o, torch.nn.parallel.DistributedDataParallel) for o in gc.get_objects()))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_gloo_run_and_resume(tmp_path):
    """Two CPU processes with the environment torchrun gives them, each training twice (new run,
    then a resume), as a multi-phase run does. ~8 s on an idle 2-core machine (torchrun would
    add ~5 s of its own start-up, so it is not used)."""
    script = tmp_path / "ddp.py"
    script.write_text(textwrap.dedent(DDP_SCRIPT.format(tests=str(Path(__file__).parent))))
    port = str(free_port())
    procs, logs = [], [tmp_path / f"rank{r}.log" for r in (0, 1)]
    try:
        for rank in (0, 1):
            env = {**os.environ, "WORLD_SIZE": "2", "RANK": str(rank), "LOCAL_RANK": str(rank),
                   "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port,
                   "OMP_NUM_THREADS": "1"}
            with open(logs[rank], "w") as log:  # files, not pipes: a full pipe would block a rank
                procs.append(subprocess.Popen([sys.executable, str(script), str(tmp_path / "run")],
                                              env=env, stdout=log, stderr=subprocess.STDOUT))
        codes = [p.wait(timeout=240) for p in procs]
    finally:
        for p in procs:  # never leave a rank behind (a hang, a failed rendezvous)
            if p.poll() is None:
                p.kill()
                p.wait()
    text = [log.read_text() for log in logs]
    assert codes == [0, 0], "\n=====\n".join(t[-2500:] for t in text)
    assert all("EPOCHS 2" in t for t in text)
    # the wrappers (and the gloo work they hold) are freed before exit, not at finalisation
    assert all("DDP LEFT 0" in t for t in text), text
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ckpt["epoch"] == 2 and ckpt["world_size"] == 2 and len(ckpt["rng"]) == 2
    assert not torch.equal(ckpt["rng"][0]["torch"], ckpt["rng"][1]["torch"])  # ranks drop differently
    lines = [json.loads(s) for s in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2]
    assert lines[0]["samples"] == 24  # 24 samples over 2 ranks of 12: each counted once


def test_distributed_pieces_in_one_process():
    info = dist_.DistInfo(world_size=3, rank=1)
    assert list(dist_.ShardSampler(8, info)) == [1, 4, 7]
    single = dist_.env_info()
    assert not single.enabled and single.is_main
    assert dist_.all_reduce_sum([1.0, 2], single, torch.device("cpu")) == [1.0, 2.0]
    model = nn.Linear(2, 2)
    assert dist_.wrap(model, single, torch.device("cpu")) is model and dist_.unwrap(model) is model
