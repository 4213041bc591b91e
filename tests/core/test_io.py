"""Atomic writes: complete or absent, with ordinary permissions."""

from __future__ import annotations

import os
import stat

import pytest

from aprior._io import atomic_path, check_output
from aprior.errors import AprioriError, OutputExistsError


def test_atomic_path_renames_on_success_with_umask_mode(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_path(target) as tmp:
        tmp.write_text("data")
        assert not target.exists()
    assert target.read_text() == "data"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_check_output(tmp_path):
    inp = tmp_path / "in.nc"
    inp.write_bytes(b"x")
    with pytest.raises(AprioriError, match="overwrite an input"):
        check_output(inp, overwrite=True, inputs=(inp,))
    with pytest.raises(OutputExistsError):
        check_output(inp, overwrite=False)
    with pytest.raises(AprioriError, match="does not exist"):
        check_output(tmp_path / "nodir" / "o.nc", overwrite=False)
    assert check_output(tmp_path / "new.nc", overwrite=False) == tmp_path / "new.nc"


def test_stale_temporaries_of_dead_writers_are_removed_and_only_those(tmp_path):
    import subprocess
    import sys

    from aprior._io import _HOST, output_lock, remove_stale_temporaries

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    mine = os.getpid()
    stale = tmp_path / f".last.pt.aprior-{_HOST}-{dead}-abc123.tmp"
    stale_dir = tmp_path / f".report.aprior-{_HOST}-{dead}-x9.d"
    live = tmp_path / f".out.nc.aprior-{_HOST}-{mine}-def456.tmp"
    other_host = tmp_path / f".out.nc.aprior-elsewhere-{dead}-ghi789.tmp"
    foreign = tmp_path / ".last.pt.abc.tmp"  # not ours: no marker
    for p in (stale, live, other_host, foreign):
        p.write_bytes(b"")
    stale_dir.mkdir()
    (stale_dir / "x").write_text("x")
    with atomic_path(tmp_path / "last.pt") as tmp:  # any write into the directory cleans up
        tmp.write_text("ok")
    assert not stale.exists() and not stale_dir.exists()
    assert live.exists() and other_host.exists() and foreign.exists()
    # a lock file of a finished run is removed, one that is held is kept
    with output_lock(tmp_path / "held.nc"):
        (tmp_path / ".old.nc.aprior-lock").write_text("")
        removed = {p.name for p in remove_stale_temporaries(tmp_path)}
        assert ".old.nc.aprior-lock" in removed and (tmp_path / ".held.nc.aprior-lock").exists()
    assert not (tmp_path / ".held.nc.aprior-lock").exists()


def test_no_clobber_rename_and_output_lock(tmp_path):
    from aprior._io import output_lock

    target = tmp_path / "o.txt"
    with pytest.raises(OutputExistsError, match="appeared while this run worked"), \
            atomic_path(target, replace=False) as tmp:
        tmp.write_text("mine")
        target.write_text("someone else's")
    assert target.read_text() == "someone else's" and sorted(os.listdir(tmp_path)) == ["o.txt"]
    with output_lock(target), pytest.raises(AprioriError, match="another aprior run"), \
            output_lock(target):
        pass


def test_check_output_refuses_unwritable_and_too_long(tmp_path):
    with pytest.raises(AprioriError, match="too long"):
        check_output(tmp_path / ("x" * 250 + ".nc"), overwrite=False)
    if os.geteuid() != 0:  # root writes through permissions; the read-only mount test covers it
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        with pytest.raises(AprioriError, match="cannot write here"):
            check_output(ro / "o.nc", overwrite=False)


def test_a_signal_inside_a_deferred_block_waits_for_its_end(tmp_path):
    import signal

    from aprior import interrupts

    old = {s: signal.getsignal(s) for s in interrupts.SIGNALS}
    interrupts.install()
    try:
        done = []
        with pytest.raises(interrupts.Terminated) as info, interrupts.deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):  # the handler runs here, and must not raise here
                pass
            done.append(True)
        assert done == [True] and info.value.signum == signal.SIGTERM
        with pytest.raises(interrupts.Terminated):  # outside a deferred block: at once
            os.kill(os.getpid(), signal.SIGHUP)
            for _ in range(1000):
                pass
    finally:
        for s, h in old.items():
            signal.signal(s, h)
