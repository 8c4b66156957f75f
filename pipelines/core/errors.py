"""How every `tributary` command reports the project's own errors: one `error:` line and exit 1.

Anything not named stays a bug and keeps its traceback. The error types are given as a function, so a
command group imports its stage's modules only when a command runs (`tributary --help` stays fast).
"""

from __future__ import annotations

import functools
import sys
import re
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


# Lines of an exception's message that say where, not what: a Rust backtrace (with RUST_BACKTRACE=1 a delta-rs
# error carries one), a bare source location, and delta-rs' "Help:" advice that follows the cause.
_NOT_THE_CAUSE = re.compile(
    r"""^(?:
        (?:stack\ )?backtrace:.*            # "Stack backtrace:"
      | \d+:\ .*                           # "  12: deltalake_core::operations::..."
      | at\ .*                             # "      at /rustc/.../src/lib.rs:12:5"
      | \S+:\d+(?::\d+)?                    # ".../clone3.S:81:0"
      | help:.*
      | note:\ run\ with\ `RUST_BACKTRACE.*
    )$""",
    re.IGNORECASE | re.VERBOSE,
)


def summarize(kind: str, message: str) -> str:
    """One line for an exception: its type and the first line of its message that states the cause.

    `message` may start with the type, as Python prints it (`_internal.CommitFailedError: ...`).
    """
    for line in message.splitlines():
        line = line.strip()
        if not line or _NOT_THE_CAUSE.match(line):
            continue
        head, sep, rest = line.partition(": ")
        if sep and (head == kind or head.endswith(f".{kind}")):
            line = rest.strip()
            if not line:
                continue
        return f"{kind}: {line}"
    return kind


def run_failure_reason(result) -> str:
    """Why a Dagster run failed, from its result: the first failed step and what its code raised."""
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data:
            error = event.step_failure_data.error
            # Name what the step's code raised, not Dagster's wrapper around it (nor assets.policy.NotRetried).
            while error and error.cause and (error.cls_name.startswith("Dagster") or error.cls_name == "NotRetried"):
                error = error.cause
            return f"step {event.step_key}: {summarize(error.cls_name, error.message) if error else 'unknown'}"
    return "see the run's log"


class OneLineGroup(click.Group):
    """The top-level command: a usage error (an unknown option, a bad value) is one `error:` line too, with
    exit 2 as click gives it, instead of click's usage block and capitalised `Error:`."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        if not kwargs.get("standalone_mode", True):
            return super().main(*args, **kwargs)
        try:
            return super().main(*args, **{**kwargs, "standalone_mode": False})
        except click.exceptions.NoArgsIsHelpError as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else self.name
            click.echo(f"error: {exc.format_message()} (see `{where} --help`)", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("aborted", err=True)
            sys.exit(1)
