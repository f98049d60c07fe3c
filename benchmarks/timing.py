"""Process CPU time that stays true on a shared machine."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence


def passive_openmp(module: str, argv: Sequence[str] | None = None) -> None:
    """Run ``python -m module`` again with OMP_WAIT_POLICY=PASSIVE unless it is set. OpenMP
    threads that spin at barriers count their spinning as CPU time, and on a shared machine a
    thread waiting for a descheduled partner spins for long: measured here under load, the same
    30-step job took 14-43 CPU s with spinning threads and 4.69-4.73 CPU s with passive ones."""
    if "OMP_WAIT_POLICY" in os.environ:
        return
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    args = list(sys.argv[1:] if argv is None else argv)
    os.execv(sys.executable, [sys.executable, "-m", module, *args])
