"""Pure tests: no sockets, no sleeps (tests/unit/conftest.py refuses both)."""
