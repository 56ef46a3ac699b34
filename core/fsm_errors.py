"""The errors the state machines raise, shared so callers catch one type per cause across all machines.

Local vs remote (h11): ``IllegalTransition`` means *we* asked for something impossible (a bug on our side);
``VenueProtocolError`` means the broker said something impossible (it misbehaved, or the wire lied).
"""

from __future__ import annotations


class IllegalTransition(Exception):
    """An event that the machine's table has no edge for, in its current state. The machine is untouched."""

    def __init__(self, *, machine: str, state: str, event: str, entity_id: str) -> None:
        super().__init__(f"{machine} {entity_id!r}: illegal event {event!r} in state {state!r}")
        self.machine = machine
        self.state = state
        self.event = event
        self.entity_id = entity_id


class VenueProtocolError(Exception):
    """The venue reported something no correct venue can (an overfill, a fill on a rejected order...)."""

    def __init__(self, message: str, *, entity_id: str = "") -> None:
        super().__init__(f"{entity_id}: {message}" if entity_id else message)
        self.entity_id = entity_id


class UnknownWireValue(VenueProtocolError):
    """A status or event string that is not part of the protocol we know (alpaca-wire.md §2)."""

    def __init__(self, *, kind: str, value: str) -> None:
        super().__init__(f"unknown {kind} {value!r}")
        self.kind = kind
        self.value = value
