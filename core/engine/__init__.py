"""The running engine: actors (trio tasks) around the pure machines, wired by bounded memory channels.

``system.Engine`` is the composition root inside core: it receives every port from the caller (sim world, runner)
and owns the nursery in which the actors live. A crashed actor halts the system; it never limps on half alive.
"""
