"""The one wrapped place where trio scheduling is seeded: fails if trio renames its private knobs or if the
seed stops deciding the interleaving."""

from __future__ import annotations

import trio
import trio.testing

from sim.determinism import seed_trio_scheduler


def interleaving(seed: int) -> list[int]:
    order: list[int] = []

    async def worker(i: int) -> None:
        for _ in range(5):
            await trio.lowlevel.checkpoint()
            order.append(i)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            for i in range(20):
                nursery.start_soon(worker, i)

    seed_trio_scheduler(seed)
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return order


def test_same_seed_same_interleaving() -> None:
    assert interleaving(7) == interleaving(7)


def test_seed_decides_the_interleaving() -> None:
    assert len({tuple(interleaving(seed)) for seed in range(5)}) > 1
