"""Integration tests: real processes, real SIGKILL, both database dialects."""
