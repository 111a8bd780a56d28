"""Shared machinery of the test runner (tests/run.py) and the checks (tests/checks/)."""
