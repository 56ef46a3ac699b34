"""Deliberately broken engines, for proving the harness can fail (issue 8: "a test switches off idempotent
retries"; issue 15: "retry POST after the latch"). Never used outside tests and the swarm's hidden ``--break``.
"""

from __future__ import annotations

import msgspec

from adapters.alpaca.rest import AlpacaRest
from adapters.bootstrap import BrokerLink
from core.model import BrokerOrder, OrderRequest
from core.ports import BrokerUnavailable, SendGate, gate_open


def break_idempotent_retries(rest: AlpacaRest, link: BrokerLink) -> None:
    """Replace submit with the classic bug: after a timeout, resend with a *fresh* client order id and never
    ask the venue whether the first attempt landed. The naive client posts on its own httpx client to the same
    broker (``link``), with none of the adapter's pacing or retry matrix."""
    attempts: dict[str, int] = {}

    async def naive_submit(request: OrderRequest, *, gate: SendGate = gate_open) -> BrokerOrder:
        del gate  # this build's bug is another one; the gate is not what it tests
        for retry in range(4):
            key = request.client_order_id if retry == 0 else f"{request.client_order_id}-r{retry}"
            attempts[request.client_order_id] = retry
            try:
                return await _single_attempt(link, msgspec.structs.replace(request, client_order_id=key))
            except BrokerUnavailable:
                continue
        raise BrokerUnavailable("gave up", retryable=True)

    rest.submit_order = naive_submit  # type: ignore[method-assign]


async def _single_attempt(link: BrokerLink, request: OrderRequest) -> BrokerOrder:
    import httpx

    from adapters.alpaca.models import WireOrder, order_from_wire, order_request_body

    transport = None if link.transport is None else link.transport()
    async with httpx.AsyncClient(base_url=link.trading_url, transport=transport,
                                 headers=link.credentials.headers()) as client:
        try:
            response = await client.post("/v2/orders", json=order_request_body(request), timeout=5.0)
        except httpx.TimeoutException as exc:
            raise BrokerUnavailable(f"timeout: {exc}", retryable=True) from None
    if response.status_code >= 400:
        raise BrokerUnavailable(f"HTTP {response.status_code}", retryable=True)
    return order_from_wire(msgspec.json.decode(response.content, type=WireOrder))


def break_halt_gate(rest: AlpacaRest) -> None:
    """The issue-15 bug: the adapter's retry loop ignores the order gate, so a POST whose answer was lost (or that
    waited on the rate limiter) is sent again after the kill switch latched."""
    original = rest.submit_order

    async def ungated_submit(request: OrderRequest, *, gate: SendGate = gate_open) -> BrokerOrder:
        del gate  # the bug: never asked, so every retry goes out whatever the kill switch says
        return await original(request)

    rest.submit_order = ungated_submit  # type: ignore[method-assign]
