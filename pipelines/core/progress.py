"""Status lines for a person waiting at a terminal: what a command is doing, and when it is done.

Written to stderr only when stderr is a terminal, as git does with its progress: a script, a log or a test
reading the output gets the results and the one `error:` line, nothing else.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import click


def on_terminal() -> bool:
    return click.get_text_stream("stderr").isatty()


@contextlib.contextmanager
def step(what: str) -> Iterator[None]:
    """`<what>...` before the work, `<what>: done in N.Ns` after it (nothing when it fails: the error says why)."""
    started = time.monotonic()
    if on_terminal():
        click.echo(f"{what}...", err=True)
    yield
    if on_terminal():
        click.echo(f"{what}: done in {time.monotonic() - started:.1f}s", err=True)


class Every:
    """When a long loop should report: its first and last pieces, and at most one in between every `seconds`.

    A run's log lines are events in the instance (a few ms each on the embedded one): a year's range run reported
    each of its months, ~70 lines, where a line every few seconds tells a person as much."""

    def __init__(self, seconds: float = 5.0, clock=time.monotonic) -> None:
        self.seconds, self._clock, self._last = seconds, clock, None

    def due(self, *, last: bool = False) -> bool:
        now = self._clock()
        if last or self._last is None or now - self._last >= self.seconds:
            self._last = now
            return True
        return False
