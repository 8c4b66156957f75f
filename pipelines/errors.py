"""How every `tributary` command reports the project's own errors: one `error:` line and exit 1.

Anything not named stays a bug and keeps its traceback. The error types are given as a function, so a
command group imports its stage's modules only when a command runs (`tributary --help` stays fast).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

Errors = Callable[[], tuple[type[BaseException], ...]]


class Failure(click.ClickException):
    """One clear line on stderr and exit 1."""

    def show(self, file=None) -> None:
        click.echo(f"error: {self.message}", err=True)


def one_line_errors(errors: Errors) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator that turns the exceptions `errors()` names into a Failure with their message."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            caught = errors()
            try:
                return fn(*args, **kwargs)
            except caught as exc:
                raise Failure(str(exc)) from None

        return wrapper

    return decorate
