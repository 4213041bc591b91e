"""Where the bundled synthetic demo world lives.

The demo world (``fixtures/world`` of a source checkout, SYNTHETIC data) is what
``aprior demo``, ``aprior generate`` and ``aprior downscale`` run on when no data are
given. It is found, in order, at ``$APRIOR_DEMO_WORLD``, ``./fixtures/world`` and the
``fixtures/world`` next to the installed package (an editable install from a checkout).
"""

from __future__ import annotations

import os
from pathlib import Path

from aprior.errors import InputFileError

#: environment variable naming another demo world directory
WORLD_ENV = "APRIOR_DEMO_WORLD"


def bundled_world() -> Path:
    """The directory of the bundled synthetic demo world.

    Raises:
        InputFileError: no demo world found (a wheel install without the checkout).
    """
    candidates = []
    if os.environ.get(WORLD_ENV):
        candidates.append(Path(os.environ[WORLD_ENV]))
    candidates += [Path.cwd() / "fixtures" / "world",
                   Path(__file__).resolve().parents[1] / "fixtures" / "world"]
    for path in candidates:
        if (path / "manifest.json").is_file():
            return path
    raise InputFileError(
        "no bundled demo world found (looked in $APRIOR_DEMO_WORLD, ./fixtures/world and the "
        "source checkout); pass your data explicitly or make one with 'aprior synth'",
        candidates[0])

