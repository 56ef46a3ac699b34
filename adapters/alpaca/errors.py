"""Alpaca's HTTP errors translated into the core's broker exception types (style rule 10).

One table decides which wire error becomes which ``core.ports`` exception and whether it may be retried.
"""

from __future__ import annotations

import msgspec

from core.ports import (
    BrokerError,
    BrokerUnavailable,
    DuplicateClientOrderId,
    InsufficientBuyingPower,
    NotCancelable,
    OrderNotFound,
    RateLimited,
)

CODE_INSUFFICIENT_BUYING_POWER = 40310000
CODE_PDT_PROTECTION = 40310100
CODE_NOT_FOUND = 40410000
CODE_UNPROCESSABLE = 42210000
CODE_RATE_LIMITED = 42910000


class ResponseDecodeError(BrokerError):
    """The broker answered 2xx but the body does not match the wire model (spec 3.2 "deserialization")."""


class ErrorBody(msgspec.Struct, kw_only=True):
    # why: Alpaca's 401 and some data-API errors carry no "code"; treat every field as optional.
    code: int = 0
    message: str = ""


def parse_error_body(body: bytes) -> ErrorBody:
    try:
        parsed = msgspec.json.decode(body, type=ErrorBody)
    except (msgspec.DecodeError, msgspec.ValidationError):
        text = body[:200].decode("utf-8", "replace").strip()
        return ErrorBody(code=0, message=text)
    return parsed


def is_duplicate_client_order_id(message: str) -> bool:
    return "client_order_id must be unique" in message.lower()


def _is_not_cancelable(message: str) -> bool:
    lowered = message.lower()
    return "not cancelable" in lowered or "already in" in lowered


def translate(status: int, body: bytes, *, endpoint: str) -> BrokerError:
    """The typed exception for one non-2xx answer. ``retryable`` marks 429 and 5xx for the retry loop."""
    err = parse_error_body(body)
    text = f"{endpoint}: HTTP {status} code={err.code} {err.message}".rstrip()
    code = err.code
    if status == 429:
        return RateLimited(text, status=status, code=code, retryable=True)
    if status >= 500:
        return BrokerUnavailable(text, status=status, code=code, retryable=True)
    if status == 404:
        return OrderNotFound(text, status=status, code=code)
    if status == 403 and err.code in (CODE_INSUFFICIENT_BUYING_POWER,) and "buying power" in err.message:
        return InsufficientBuyingPower(text, status=status, code=code)
    if status == 422 and is_duplicate_client_order_id(err.message):
        return DuplicateClientOrderId(text, status=status, code=code)
    if status == 422 and _is_not_cancelable(err.message) and endpoint.startswith("DELETE"):
        return NotCancelable(text, status=status, code=code)
    return BrokerError(text, status=status, code=code)
