"""`serving.workers`: the sockets `serve --workers N` listens on (the processes themselves are run by
tests/serving/test_serve_cmd.py)."""

from __future__ import annotations

import socket

import pytest

from gitops_ml.serving.workers import PortUnavailable, bind_shared, reuseport_supported

pytestmark = pytest.mark.skipif(not reuseport_supported(), reason="SO_REUSEPORT balances on Linux only")


def test_workers_bind_the_same_port_and_port_0_is_one_port_for_all():
    first = bind_shared("127.0.0.1", 0)
    port = first.getsockname()[1]
    second = bind_shared("127.0.0.1", port)
    try:
        second.listen(8)
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # the listening one accepts; the reserved, not listening one takes no connection
    finally:
        first.close()
        second.close()


def test_a_port_another_program_holds_is_refused_naming_it():
    other = socket.socket()
    other.bind(("127.0.0.1", 0))  # no SO_REUSEPORT: nobody may share it
    other.listen(1)
    port = other.getsockname()[1]
    try:
        with pytest.raises(PortUnavailable, match=f"cannot serve on 127.0.0.1:{port}") as caught:
            bind_shared("127.0.0.1", port)
        assert caught.value.exit_code == 2
    finally:
        other.close()
