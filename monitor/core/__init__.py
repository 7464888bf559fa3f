"""The pure core: decoding, tenant resolution, windows, rules, policy and state.

Nothing in this package does I/O or reads a clock; `now` is always an argument. An
import-linter contract (pyproject.toml) keeps it that way.
"""
