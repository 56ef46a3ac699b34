"""An in-memory, bidirectional byte stream pair: the "socket" under the in-process venue's WebSockets.

``trio.testing.memory_stream_pair`` is built to shake out bugs in the code under test: every ``send_all`` and
every ``receive_some`` runs two extra checkpoints before doing its work, so each WebSocket frame cost five trio
task steps between the two ends (about a third of all the steps of a simulated day went to that). This pair keeps
its semantics (unbounded buffering, EOF after the buffered bytes, ``BrokenResourceError`` to a peer that closed,
``ClosedResourceError`` on a closed end, ``BusyResourceError`` for two tasks on one direction) with one
checkpoint per call, like a socket whose buffer is never full. trio's own conformance checks for half-closeable
streams (``trio.testing.check_half_closeable_stream``) run against it in the tests.

The bytes are the same either way: trio-websocket frames them on both ends; only the scheduler's work changes.
"""

from __future__ import annotations

import operator

import trio
from trio.lowlevel import ParkingLot, checkpoint


class _Direction:
    """One direction of the pair: the bytes in flight, the writer's EOF, the reader's close."""

    __slots__ = ("data", "eof", "lot", "reader_closed", "receiving", "sending")

    def __init__(self) -> None:
        self.data = bytearray()
        self.eof = False  # the writing end closed (or sent EOF): the reader gets b"" once the bytes are read
        self.reader_closed = False  # the reading end closed: sending on is a broken connection
        self.lot = ParkingLot()  # the reader, waiting for bytes or EOF
        self.sending = False
        self.receiving = False


class MemorySocket(trio.abc.HalfCloseableStream):
    """One end of ``memory_socket_pair()``."""

    __slots__ = ("_in", "_out")

    def __init__(self, incoming: _Direction, outgoing: _Direction) -> None:
        self._in, self._out = incoming, outgoing

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        out = await self._ready_to_send()
        if data:
            out.data += data
            out.lot.unpark_all()

    async def wait_send_all_might_not_block(self) -> None:
        await self._ready_to_send()

    async def _ready_to_send(self) -> _Direction:
        """The checkpoint every send makes (two tasks sending at once: the second is refused), then the checks."""
        out = self._out
        if out.sending:
            raise trio.BusyResourceError("another task is using this stream")
        out.sending = True
        try:
            await checkpoint()
        finally:
            out.sending = False
        self._check_sendable()
        return out

    def _check_sendable(self) -> None:
        if self._out.eof:
            raise trio.ClosedResourceError("this end's sending side is closed")
        if self._out.reader_closed:
            raise trio.BrokenResourceError("the other end closed")

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        incoming = self._in
        if max_bytes is not None:
            max_bytes = operator.index(max_bytes)
            if max_bytes < 1:
                raise ValueError("max_bytes must be >= 1")
        if incoming.receiving:
            raise trio.BusyResourceError("another task is using this stream")
        incoming.receiving = True
        try:
            if incoming.data or incoming.eof or incoming.reader_closed:
                await checkpoint()
            else:
                await incoming.lot.park()
            if incoming.reader_closed:
                raise trio.ClosedResourceError("this end is closed")
            data = incoming.data
            if max_bytes is None or max_bytes >= len(data):
                incoming.data = bytearray()
                return data
            chunk = data[:max_bytes]
            del data[:max_bytes]
            return chunk
        finally:
            incoming.receiving = False

    async def send_eof(self) -> None:
        self._out.eof = True
        self._out.lot.unpark_all()
        await checkpoint()

    async def aclose(self) -> None:
        self._out.eof = True
        self._out.lot.unpark_all()
        self._in.reader_closed = True
        self._in.data = bytearray()
        self._in.lot.unpark_all()
        await checkpoint()


def memory_socket_pair() -> tuple[MemorySocket, MemorySocket]:
    """Two connected ends: what one sends, the other receives, in order."""
    left_to_right, right_to_left = _Direction(), _Direction()
    return MemorySocket(right_to_left, left_to_right), MemorySocket(left_to_right, right_to_left)


__all__ = ["MemorySocket", "memory_socket_pair"]
