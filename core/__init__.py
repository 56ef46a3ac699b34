"""ttlive's pure domain: state machines, risk, ledger, audit schema, ports and actors.

Nothing here does I/O or reads a wall clock; clock, randomness and ids arrive through ports.
"""
