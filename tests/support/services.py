"""Which servers are here. Under GATEWAY_REQUIRE_SERVICES=1 a missing one fails, never skips."""

from __future__ import annotations

import os
import shutil
import socket
from contextlib import closing

import pytest

POSTGRES_URL = os.environ.get(
    "GATEWAY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
RABBITMQ_URL = os.environ.get("GATEWAY_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("GATEWAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def required() -> bool:
    return os.environ.get("GATEWAY_REQUIRE_SERVICES") == "1"


def missing(what: str) -> None:
    """Skip, or fail when services are required (CI)."""
    if required():
        pytest.fail(f"{what} is required (GATEWAY_REQUIRE_SERVICES=1) but not available")
    pytest.skip(f"{what} not available")


def port_open(host: str, port: int) -> bool:
    with closing(socket.socket()) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ClosedPort:
    """A loopback port that refuses connections, as one nothing listens on, until `open()`
    hands it to the server that will listen there. A port from `free_port` is free only until
    any socket binds it: every outgoing connection takes its local port from the same range,
    and one took a relay's port before the relay came up. This one is bound (and not
    listening) all along, so no other socket can have it."""

    def __init__(self) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.port = int(self._socket.getsockname()[1])

    def open(self) -> int:
        """The port, released for the server about to bind it."""
        self._socket.close()
        return self.port


def dovecot_binary() -> str | None:
    return shutil.which("dovecot") or (
        "/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot") else None
    )
