"""Id factories behind core.ports.IdFactory: seeded (simulation replays byte for byte) or uuid4 (live)."""

from __future__ import annotations

import random
import uuid


class SeededIds:
    """UUID-shaped ids from a seeded RNG: deterministic per seed, collision-free in practice."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"ids:{seed}")

    def new_id(self, kind: str) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))


class Uuid4Ids:
    def new_id(self, kind: str) -> str:
        return str(uuid.uuid4())
