"""Which failures are transient: worth the same step again after a pause (S3 5xx and throttling, a dropped or
refused connection, a timeout, a locked SQLite file), as opposed to bad data, bad configuration or a bug, which
fail the same way every time.

`assets/policy.py` retries a step only when `is_transient` says so. The whole cause chain is looked at, because
the project's errors wrap what the client library raised.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

TRANSIENT_AWS_CODES: Final = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "SlowDown", "RequestLimitExceeded",
    "ProvisionedThroughputExceededException", "RequestThrottled", "TooManyRequestsException", "RequestTimeout",
    "RequestTimeoutException", "InternalError", "InternalFailure", "InternalServerError", "ServiceUnavailable",
    "ServiceUnavailableException", "LimitExceededException",
})
_TRANSIENT_TEXT: Final = re.compile(
    r"\b(50[0234]|429)\b|slow ?down|throttl|timed? ?out|connection (reset|refused|aborted|closed)|broken pipe|"
    r"temporarily unavailable|service unavailable|server closed the connection|database is locked|"
    r"could not connect to server|connection to server .* failed",
    re.IGNORECASE,
)
"""What the message of a wrapped client error says when the cause object is gone (deltalake and object_store
raise a plain OSError with the HTTP status and reason in the text)."""


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _aws_transient(exc: BaseException) -> bool:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    code = response.get("Error", {}).get("Code", "")
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return code in TRANSIENT_AWS_CODES or status >= 500 or status == 429


def _one_transient(exc: BaseException) -> bool:
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    if getattr(exc, "connection_invalidated", False):  # SQLAlchemy: the database connection was lost
        return True
    name = type(exc).__name__
    if name in {"EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError",
                "ProxyConnectionError"}:  # botocore's network errors
        return True
    if _aws_transient(exc):
        return True
    if name == "CommitFailedError":  # deltalake: another writer committed first; the write can be tried again
        return True
    wrapped = isinstance(exc, OSError | RuntimeError) or name in {"OperationalError", "DeltaError"}
    return wrapped and bool(_TRANSIENT_TEXT.search(str(exc)))


def is_transient(exc: BaseException) -> bool:
    """True when `exc`, or anything in its cause chain, is a fault that may pass on its own."""
    return any(_one_transient(e) for e in _chain(exc))
