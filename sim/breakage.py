"""Deliberately broken engines, for proving the harness can fail (issue 8: "a test switches off idempotent
retries"). Never used outside tests and `ttlive sim --break`.
"""

from __future__ import annotations

from typing import Any

import msgspec

from adapters.alpaca.rest import AlpacaRest
from core.model import BrokerOrder, OrderRequest
from core.ports import BrokerUnavailable


def break_idempotent_retries(rest: AlpacaRest) -> None:
    """Replace submit with the classic bug: after a timeout, resend with a *fresh* client order id and never
    ask the venue whether the first attempt landed."""
    original = AlpacaRest.submit_order
    attempts: dict[str, int] = {}

    async def naive_submit(request: OrderRequest) -> BrokerOrder:
        for retry in range(4):
            key = request.client_order_id if retry == 0 else f"{request.client_order_id}-r{retry}"
            attempts[request.client_order_id] = retry
            try:
                return await _single_attempt(rest, msgspec.structs.replace(request, client_order_id=key), original)
            except BrokerUnavailable:
                continue
        raise BrokerUnavailable("gave up", retryable=True)

    rest.submit_order = naive_submit  # type: ignore[method-assign]


async def _single_attempt(rest: AlpacaRest, request: OrderRequest, original: Any) -> BrokerOrder:
    import httpx

    from adapters.alpaca.models import order_request_body

    try:
        response = await rest.http._client.post("/v2/orders", json=order_request_body(request), timeout=5.0)
    except httpx.TimeoutException as exc:
        raise BrokerUnavailable(f"timeout: {exc}", retryable=True) from None
    if response.status_code >= 400:
        raise BrokerUnavailable(f"HTTP {response.status_code}", retryable=True)
    return rest._order(response, "POST /v2/orders")
