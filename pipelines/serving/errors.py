"""Error answers in the shape of SageMaker's InvokeEndpoint API, so boto3's `sagemaker-runtime` client raises
with the message (issue 20.3).

botocore parses InvokeEndpoint (protocol rest-json) errors by reading the code from the `x-amzn-ErrorType`
header (or `__type` in the body) and the message from the body's `message` (or `Message`); a body without
them (ours was `{"error": ...}`) reached the caller as `An error occurred (400) ...: ` with an empty message.
The codes are the API's own (`ValidationError` 400, `ModelError` 424, `InternalFailure` 500,
`ServiceUnavailable` 503, `ModelNotReadyException` 429), so `client.exceptions.ValidationError` etc. match.
The HTTP status stays the precise one (413, 415, 408 are validation errors with a truer status); `error`
is kept beside `message` for callers that read it.
"""

from __future__ import annotations

import orjson

ERROR_TYPE_HEADER = b"x-amzn-errortype"
_TYPES = {424: "ModelError", 429: "ModelNotReadyException", 500: "InternalFailure", 503: "ServiceUnavailable"}


def error_type(status: int) -> str:
    """The InvokeEndpoint error code of an HTTP status (any other 4xx is the caller's: ValidationError)."""
    if status in _TYPES:
        return _TYPES[status]
    return "ValidationError" if 400 <= status < 500 else "InternalFailure"


def error_body(status: int, message: str, **extra: object) -> tuple[bytes, bytes]:
    """(JSON body, error type) of an error answer; `extra` adds fields (e.g. the `status` of /ping)."""
    kind = error_type(status)
    doc: dict[str, object] = {"__type": kind, "message": message, "error": message, **extra}
    if kind == "ModelError":  # the members boto3's ModelError carries
        doc["OriginalStatusCode"] = status
        doc["OriginalMessage"] = message
    return orjson.dumps(doc), kind.encode()
