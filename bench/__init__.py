"""Benchmarks (`make bench`): speed and memory figures that unit tests must not time.

Each module here with a `run()` is a benchmark. `run()` returns rows for the table that
`python -m bench` prints, each a dict: {"name": str, "value": float, "unit": str,
"ratio": float | None, "of": str | None (what the ratio is against), "note": str | None}.
Benchmarks use their own throwaway database under var/bench/, never the demo database.
"""
