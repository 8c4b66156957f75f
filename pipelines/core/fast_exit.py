"""Leave the `tributary` command without tearing the interpreter down.

Once a command is done, CPython still finalizes: it clears the ~2,200 modules a run imports (Dagster, polars,
plotly, SQLAlchemy) and collects what they held. After a year's run that took 1.2 s here (0.4 s after importing
Dagster alone), more than the work of a scheduled day's extraction, for nothing a user keeps: every write of the
command is committed by then. The console script (`pipelines.cli.console`) arms this module with its exit code;
the hook below is registered before any other module's, so it runs after all of them (atexit is last in, first
out) and after Python has joined the non-daemon threads: it shuts logging down, flushes the standard streams and
ends the process with `os._exit`. Disarmed (tests, `main()` called as a function) it does nothing;
`TRIBUTARY_FULL_EXIT=1` (read by the console script) or a running coverage measurement keep the full teardown.

Written by hand: Python has no switch for skipping its teardown.
"""

from __future__ import annotations

import atexit
import os
import sys

_code: list[int] = []


def arm(code: int, *, teardown: bool = False) -> None:
    """End the process with `code` once the atexit hooks have run (`teardown`: let Python finish as usual)."""
    if not teardown:
        _code.append(code)


def exit_code(exc: BaseException | None) -> int:
    """The code Python itself would exit with after `exc` (None: the command returned)."""
    if exc is None:
        return 0
    if isinstance(exc, SystemExit):
        return 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
    return 130 if isinstance(exc, KeyboardInterrupt) else 1


def _leave() -> None:
    if not _code or "coverage" in sys.modules:
        return
    if (logging := sys.modules.get("logging")) is not None:
        logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said on it
            pass
    os._exit(_code[-1])


atexit.register(_leave)
