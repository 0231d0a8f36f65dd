"""The daemon tests' clamd fixture and test files, for the operator's tests."""

from tests.daemon.conftest import Files, clamd_socket

__all__ = ["Files", "clamd_socket"]
