"""Small I/O helpers shared by all writers: atomic writes and output checks."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from aprior.errors import AprioriError, OutputExistsError


def check_output(path: str | os.PathLike[str], *, overwrite: bool, inputs: tuple = ()) -> Path:
    """Validate an output path before any work is done.

    Refuses an existing output unless ``overwrite``, and refuses to write over an input.
    """
    out = Path(path)
    for inp in inputs:
        with contextlib.suppress(OSError):
            if out.exists() and out.samefile(inp) or out.resolve() == Path(inp).resolve():
                raise AprioriError("the output would overwrite an input file; choose another output", out)
    if out.exists() and not overwrite:
        raise OutputExistsError("output exists; pass --overwrite to replace it", out)
    if not out.parent.exists():
        raise AprioriError("the output directory does not exist", out.parent)
    return out


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target directory; rename it to ``path`` on success.

    On any exception the temporary file is removed and ``path`` is left untouched.
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=suffix if suffix is not None else ".tmp", dir=target.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual mode
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise
