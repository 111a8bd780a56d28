"""The checks: one scenario per file, found by tests/run.py (see tests/README.md)."""
