"""The benchmark suite behind ``make bench``: latency budgets, throughput, peers side by side, scaling.

``python -m tools.bench`` runs it and writes BENCHMARKS.md and bench-results.json; ``--quick`` shrinks it.
"""
