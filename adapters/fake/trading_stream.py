"""The ``/stream`` (trade_updates) protocol of the fake venue as a sans-IO session (alpaca-wire.md §4).

No greeting; authenticate, listen, then trade_updates frames. Malformed client input gets an error frame
``{"stream":"error","data":{"error_message":...}}`` and the session stays up (alpaca-py ignores that stream).
"""

from __future__ import annotations

import json
from typing import Any, Final, Protocol

from adapters.fake.interfaces import Close, Frame, Outgoing
from adapters.fake.wire import encode
from core.limits import STREAM_BUFFER_MAX_MESSAGES

TRADE_UPDATES: Final = "trade_updates"
POLICY_VIOLATION: Final = 1008  # close code after a refused authentication / eviction
SLOW_CLIENT: Final = 1008


class TradingStreamHost(Protocol):
    """What a session needs from its venue (kept narrow so the session is testable on its own)."""

    def check_credentials(self, key_id: str, secret_key: str) -> bool: ...
    def claim_stream_key(self, session: TradingStreamSession, key_id: str) -> bool: ...
    def release_stream(self, session: TradingStreamSession) -> None: ...
    def stream_refusal(self, stream: str) -> int | None: ...
    def stream_muted(self, stream: str) -> bool: ...


class TradingStreamSession:
    """One trading-stream connection. Frames are JSON, in binary frames (``binary=True``, Alpaca paper's manner
    and the venue's default) or text frames.

    Fault behaviour: while ``muted`` the session answers nothing and trade updates published meanwhile are
    lost (the connected-but-mute failure); a reordered update is held back until the next update or the end
    of the following venue cycle; ``force_close``/``evict`` end the session with a Close item.
    """

    def __init__(self, host: TradingStreamHost, *, binary: bool = False) -> None:
        self._host = host
        self._binary = binary
        self._outbox: list[Outgoing] = []
        self._held: tuple[bytes, int] | None = None  # (payload, cycles held) for a reordered update
        self.key_id: str | None = None
        self.authenticated = False
        self.listening = False
        self.closed = False
        self.delivered = 0  # trade_updates frames put in the outbox
        self.lost = 0  # trade_updates lost to mute/drop faults

    # --- StreamSession ---------------------------------------------------------------------------------

    def on_open(self) -> list[Outgoing]:
        refusal = self._host.stream_refusal("trading")
        if refusal is None:
            return []  # the trading stream has no greeting: the client speaks first
        if refusal == 406:
            self._push_json({"stream": "error", "data": {"error_message": "connection limit exceeded", "code": 406}})
            self._close(POLICY_VIOLATION, "connection limit exceeded")
        else:
            self._close(refusal, "venue unavailable")
        return self.drain()

    def receive(self, data: str | bytes) -> list[Outgoing]:
        if self.closed or self.muted:
            return []
        try:
            message = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return self._error("invalid syntax: not JSON")
        if not isinstance(message, dict) or not isinstance(message.get("action"), str):
            return self._error("invalid syntax: expected an object with an action")
        action = message["action"]
        if action in ("authenticate", "auth"):
            self._authenticate(message)
        elif action == "listen":
            self._listen(message)
        else:
            return self._error(f"unknown action {action!r}")
        return self.drain()

    def drain(self) -> list[Outgoing]:
        out, self._outbox = self._outbox, []
        return out

    def on_close(self) -> None:
        if not self.closed:
            self.closed = True
            self._host.release_stream(self)

    @property
    def muted(self) -> bool:
        return self._host.stream_muted("trading")

    # --- venue side ----------------------------------------------------------------------------------------

    @property
    def wants_trade_updates(self) -> bool:
        return self.listening and not self.closed

    def publish(self, payload: bytes, fate: str) -> None:
        """One trade_updates frame, with the fate the venue's fault plan drew for this session."""
        if self.muted or fate == "drop":
            self.lost += 1
            return
        if fate == "reorder" and self._held is None:
            self._held = (payload, 0)
            return
        self._push_update(payload)
        if fate == "duplicate":
            self._push_update(payload)
        self._release_held()

    def end_cycle(self) -> None:
        """Called by the venue after each advance / request: a held update waits at most one more cycle."""
        if self._held is not None:
            payload, cycles = self._held
            if cycles >= 1:
                self._release_held()
            else:
                self._held = (payload, cycles + 1)

    def force_close(self, code: int, reason: str) -> None:
        if not self.closed:
            self._close(code, reason)

    def evict(self) -> None:
        """A newer connection took this key's only slot (406)."""
        if not self.closed:
            self._push_json({"stream": "error", "data": {"error_message": "connection limit exceeded", "code": 406}})
            self._close(POLICY_VIOLATION, "connection limit exceeded")

    # --- internals ------------------------------------------------------------------------------------------

    def _authenticate(self, message: dict[str, Any]) -> None:
        if message["action"] == "authenticate":
            data = message.get("data")
            data = data if isinstance(data, dict) else {}
            key, secret = data.get("key_id"), data.get("secret_key")
        else:  # legacy {"action":"auth","key":..,"secret":..}
            key, secret = message.get("key"), message.get("secret")
        key = key if isinstance(key, str) else ""
        secret = secret if isinstance(secret, str) else ""
        if not self._host.check_credentials(key, secret):
            self._push_json(_authorization("unauthorized"))
            self._close(POLICY_VIOLATION, "unauthorized")
            return
        if not self.authenticated and not self._host.claim_stream_key(self, key):
            self._push_json({"stream": "error", "data": {"error_message": "connection limit exceeded", "code": 406}})
            self._close(POLICY_VIOLATION, "connection limit exceeded")
            return
        self.key_id = key
        self.authenticated = True
        self._push_json(_authorization("authorized"))

    def _listen(self, message: dict[str, Any]) -> None:
        if not self.authenticated:
            self._push_json({"stream": "authorization", "data": {"action": "listen", "status": "unauthorized"}})
            return
        data = message.get("data")
        streams = data.get("streams") if isinstance(data, dict) else None
        if not isinstance(streams, list) or not all(isinstance(s, str) for s in streams):
            self._push_json(_error_payload("invalid listen: data.streams must be a list of strings"))
            return
        self.listening = TRADE_UPDATES in streams
        self._push_json({"stream": "listening", "data": {"streams": [TRADE_UPDATES] if self.listening else []}})

    def _error(self, text: str) -> list[Outgoing]:
        self._push_json(_error_payload(text))
        return self.drain()

    def _push_json(self, message: dict[str, Any]) -> None:
        self._push(encode(message))

    def _push_update(self, payload: bytes) -> None:
        self.delivered += 1
        self._push(payload)

    def _push(self, payload: bytes) -> None:
        if self.closed:
            return
        if len(self._outbox) >= STREAM_BUFFER_MAX_MESSAGES:  # the client stopped reading: cut it off
            self._close(SLOW_CLIENT, "slow client")
            return
        self._outbox.append(Frame(payload if self._binary else payload.decode()))

    def _release_held(self) -> None:
        if self._held is not None:
            payload, _ = self._held
            self._held = None
            self._push_update(payload)

    def _close(self, code: int, reason: str) -> None:
        self._held = None
        self._outbox.append(Close(code, reason))
        self.closed = True
        self.listening = False
        self._host.release_stream(self)


def _authorization(status: str) -> dict[str, Any]:
    return {"stream": "authorization", "data": {"status": status, "action": "authenticate"}}


def _error_payload(text: str) -> dict[str, Any]:
    return {"stream": "error", "data": {"error_message": text}}
