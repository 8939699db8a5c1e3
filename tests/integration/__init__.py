"""Tests against real servers on 127.0.0.1: MockServer, tests/rawserver.py, subprocesses."""
