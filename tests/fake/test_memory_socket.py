"""The in-process venue's socket pair: trio's own conformance checks for streams, and the cost it exists for."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from adapters.fake.memory_socket import MemorySocket, memory_socket_pair


async def test_passes_trios_half_closeable_stream_checks() -> None:
    async def maker() -> tuple[MemorySocket, MemorySocket]:
        return memory_socket_pair()

    await trio.testing.check_half_closeable_stream(maker, None)


async def test_bytes_arrive_in_order_then_eof() -> None:
    left, right = memory_socket_pair()
    await left.send_all(b"abc")
    await left.send_all(b"def")
    assert await right.receive_some(2) == b"ab"
    assert await right.receive_some() == b"cdef"
    await left.aclose()
    assert await right.receive_some() == b""
    assert await right.receive_some() == b""
    with pytest.raises(trio.BrokenResourceError):  # the closed end no longer reads
        await right.send_all(b"x")


async def test_a_send_and_a_receive_cost_one_checkpoint_each() -> None:
    """What it is for: trio.testing's pair runs two extra checkpoints in each call (five task steps a frame)."""
    left, right = memory_socket_pair()
    steps = []

    class Count(trio.abc.Instrument):
        def before_task_step(self, task: trio.lowlevel.Task) -> None:
            steps.append(task)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(right.receive_some)
        await trio.testing.wait_all_tasks_blocked()
        trio.lowlevel.add_instrument(Count())
        await left.send_all(b"frame")
        await trio.testing.wait_all_tasks_blocked()
    receiver_steps = [t for t in steps if t is not trio.lowlevel.current_task()]
    assert len(receiver_steps) == 1  # woken once, with the bytes
    assert len(steps) - len(receiver_steps) <= 3  # the sender: its checkpoint, then the two waits for quiet
