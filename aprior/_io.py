"""I/O safety shared by all writers: atomic writes, output locks, stale temporaries.

Every output is written to a temporary in its target directory and renamed when complete,
so a file is whole or absent. The temporaries carry the writer's host and process id in
their names (``.<name>.aprior-<host>-<pid>-<random><suffix>``), so a later run into the
same directory can remove the ones whose process is gone (``kill -9``, a power cut) and
only those: :func:`remove_stale_temporaries`. Staging directories (:func:`staging_dir`) and
output locks (:func:`output_lock`) use the same marker.

An output lock is an ``flock`` on ``.<name>.aprior-lock``, taken before the work and held
until the result is renamed into place: a second writer of the same output is refused at
once instead of silently replacing the first one's result. Without ``--overwrite`` the
final rename refuses to replace a file that appeared meanwhile (a hard link, which fails on
an existing name, then an unlink).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

from aprior.errors import AprioriError, OutputExistsError
from aprior.interrupts import deferred

log = logging.getLogger(__name__)

_HOST = re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname())[:32] or "host"
_MARK = re.compile(r"^\.(?P<name>.+)\.aprior-(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)-[A-Za-z0-9_]+"
                   r"(?:\..*)?$")
_LOCK_SUFFIX = ".aprior-lock"


def _prefix(target: Path) -> str:
    return f".{target.name}.aprior-{_HOST}-{os.getpid()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(directory: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporaries of aprior writers on this host whose process is gone.

    Only names with our marker are touched; a temporary of a live process (another run in
    progress) or of another host is left alone. Returns what was removed.
    """
    d = Path(directory)
    removed: list[Path] = []
    try:
        entries = list(d.iterdir())
    except OSError:
        return removed
    for p in entries:
        m = _MARK.match(p.name)
        if m is None or m.group("host") != _HOST or _alive(int(m.group("pid"))):
            continue
        with contextlib.suppress(OSError):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
            removed.append(p)
    for p in entries:  # lock files of finished or killed runs (nobody holds their lock)
        if p.name.endswith(_LOCK_SUFFIX) and p.name.startswith(".") and _unlocked(p):
            with contextlib.suppress(OSError):
                p.unlink()
                removed.append(p)
    if removed:
        log.info("removed %d stale temporary file(s) of killed aprior runs in %s", len(removed), d)
    return removed


def _unlocked(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


def probe_writable(directory: str | os.PathLike[str]) -> None:
    """Refuse a directory where no file can be created (read-only, no permission, missing).

    Raises:
        AprioriError: one line naming the directory and the reason.
    """
    d = Path(directory)
    if not d.is_dir():
        raise AprioriError("the output directory does not exist", d)
    with deferred():  # a signal between the creation and the removal waits for the removal
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".probe.aprior-{_HOST}-{os.getpid()}-", dir=d)
        except OSError as exc:
            raise AprioriError(f"cannot write here: {exc.strerror or exc}", d) from None
        os.close(fd)
        os.unlink(tmp)


def check_output(path: str | os.PathLike[str], *, overwrite: bool, inputs: tuple = ()) -> Path:
    """Validate an output path before any work is done.

    Refuses an existing output unless ``overwrite``, an output that is an input, a missing
    or unwritable directory, and a name too long for the file system.
    """
    out = Path(path)
    for inp in inputs:
        with contextlib.suppress(OSError):
            if out.exists() and out.samefile(inp) or out.resolve() == Path(inp).resolve():
                raise AprioriError("the output would overwrite an input file; choose another output", out)
    if out.exists() and not overwrite:
        raise OutputExistsError("output exists; pass --overwrite to replace it", out)
    if out.exists() and out.is_dir() and not out.is_symlink():
        raise AprioriError("is a directory; an output file is expected here", out)
    if not out.parent.exists():
        raise AprioriError("the output directory does not exist", out.parent)
    _check_name(out)
    probe_writable(out.parent)
    return out


def _check_name(out: Path) -> None:
    try:
        limit = os.pathconf(out.parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    # our temporaries add about 40 characters to the name
    if len(out.name.encode()) + 48 > limit:
        raise AprioriError(f"the file name is too long for this file system ({len(out.name)} "
                           f"characters; at most about {limit - 48})", out)


def _place(tmp: Path, target: Path, replace: bool) -> None:
    if replace:
        os.replace(tmp, target)
        return
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise OutputExistsError("appeared while this run worked (another run wrote it); "
                                "nothing was replaced; pass --overwrite to replace it",
                                target) from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
            raise
        if target.exists():  # file systems without hard links: check, then rename
            raise OutputExistsError("appeared while this run worked; nothing was replaced",
                                    target) from None
        os.replace(tmp, target)
        return
    os.unlink(tmp)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str | None = None, *,
                replace: bool = True) -> Iterator[Path]:
    """Yield a temporary path in the target directory; rename it to ``path`` on success.

    On any exception (Ctrl-C and the signals the CLI turns into it included) the temporary
    is removed and ``path`` is left untouched. With ``replace=False`` an existing ``path``
    is never replaced (:class:`OutputExistsError`). Stale temporaries of killed runs in
    the directory are removed first.
    """
    target = Path(path)
    remove_stale_temporaries(target.parent)
    tmp_path = None
    try:
        with deferred():  # the temporary exists only once tmp_path names it
            fd, tmp = tempfile.mkstemp(prefix=_prefix(target),
                                       suffix=suffix if suffix is not None else ".tmp",
                                       dir=target.parent)
            tmp_path = Path(tmp)
            os.close(fd)
            os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual mode
        yield tmp_path
        with deferred():
            _place(tmp_path, target, replace)
    except BaseException:
        if tmp_path is not None:
            with deferred(), contextlib.suppress(OSError):
                tmp_path.unlink()
        raise


@contextlib.contextmanager
def staging_dir(target: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary directory beside ``target`` with our marker and the user's umask.

    Removed on any exception; on success the caller moves what it wants out of it, and
    what is left is removed.
    """
    tmp = None
    try:
        with deferred():
            tmp = make_staging_dir(target)
        yield tmp
    finally:
        if tmp is not None:
            with deferred():
                shutil.rmtree(tmp, ignore_errors=True)


def make_staging_dir(target: str | os.PathLike[str]) -> Path:
    """Create the staging directory of :func:`staging_dir` (the caller removes it)."""
    target = Path(target)
    remove_stale_temporaries(target.parent)
    tmp = Path(tempfile.mkdtemp(prefix=_prefix(target), suffix=".d", dir=target.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
    return tmp


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


@contextlib.contextmanager
def output_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive lock on the output ``path`` for the duration of the block.

    Raises:
        AprioriError: another process holds it (another run writes the same output).
    """
    target = Path(path)
    lock = target.parent / f".{target.name}{_LOCK_SUFFIX}"
    fd: int | None = None
    held = False
    try:
        with deferred():  # the lock file and its lock are taken together
            fd, held = _take_lock(lock, target)
        yield
    finally:
        with deferred():
            if held:
                with contextlib.suppress(OSError):
                    os.unlink(lock)
            if fd is not None:
                os.close(fd)


def _take_lock(lock: Path, target: Path) -> tuple[int, bool]:
    """Open and ``flock`` the lock file (retrying if its holder removed it meanwhile)."""
    held = False
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise AprioriError(f"cannot write here: {exc.strerror or exc}", target.parent) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise AprioriError("another aprior run is writing this output now; wait for it "
                               "to finish or choose another output", target) from None
        try:
            held = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            held = False
        if held:
            return fd, held
        os.close(fd)
