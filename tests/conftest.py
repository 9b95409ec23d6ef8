"""Fixtures: real servers on loopback (SMTP sink, Dovecot, PostgreSQL, RabbitMQ, Redis)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from gateway.core.runtime import Runtime
from gateway.outbound.outbox import QUEUES
from gateway.storage.db import make_engine, migrate
from gateway.storage.models import Base
from tests.support import services
from tests.support.dovecot import Dovecot
from tests.support.harness import Gateway, OffsetClock, settings_for
from tests.support.services import free_port, missing
from tests.support.sink import Sink
from tests.support.tls import TestCA

FIXTURES = Path(__file__).parent / "fixtures" / "emails"


@pytest.fixture(autouse=True, scope="session")
def _isolated_settings() -> Iterator[None]:
    """No gateway.toml or GATEWAY_* setting of the machine leaks into a test."""
    saved = dict(os.environ)
    for key in list(os.environ):
        if (
            key.startswith("GATEWAY_")
            and key not in ("GATEWAY_REQUIRE_SERVICES",)
            and not key.startswith("GATEWAY_TEST_")
        ):
            del os.environ[key]
    os.environ["GATEWAY_CONFIG"] = "/nonexistent/gateway.toml"
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def sink() -> Iterator[Sink]:
    server = Sink(free_port()).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    """A private CA and a certificate for 127.0.0.1 signed by it."""
    return TestCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def tls_sink(test_ca: TestCA) -> Iterator[Sink]:
    """A relay that requires STARTTLS, with a certificate of the test CA."""
    server = Sink(free_port(), tls_context=test_ca.server_context()).start()
    yield server
    server.stop()


# --- databases -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "gateway.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "gateway.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A database of its own for this test run, migrated once."""
    admin = services.POSTGRES_URL
    try:
        conn = psycopg.connect(admin, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        missing("PostgreSQL")
    name = f"gateway_test_{uuid.uuid4().hex[:8]}"
    conn.execute(f'CREATE DATABASE "{name}"')
    url = admin.rsplit("/", 1)[0] + f"/{name}"
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    yield url
    conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
    )
    conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    conn.close()


@pytest.fixture
def postgres_url(postgres_database: str) -> str:
    """The run's database, emptied for this test."""
    engine = make_engine(postgres_database)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return postgres_database


@pytest.fixture
def rabbitmq_url() -> str:
    if not services.port_open("127.0.0.1", 5672):
        missing("RabbitMQ")
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    broker = RabbitmqBroker(url=services.RABBITMQ_URL)
    for queue in QUEUES:
        broker.declare_queue(queue)
    broker.flush_all()
    broker.close()
    return services.RABBITMQ_URL


@pytest.fixture
def redis_url() -> str:
    if not services.port_open("127.0.0.1", 6379):
        missing("Redis")
    import redis

    redis.Redis.from_url(services.REDIS_URL).flushdb()
    return services.REDIS_URL


BACKENDS = {
    "sqlite": ("sqlite_url", None),
    "postgresql+rabbitmq": ("postgres_url", "rabbitmq_url"),
    "postgresql+redis": ("postgres_url", "redis_url"),
}


@pytest.fixture(params=list(BACKENDS))
def backend(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(database URL, broker URL) for each supported set-up; '' is the in-process broker."""
    database, broker = BACKENDS[request.param]
    return request.getfixturevalue(database), request.getfixturevalue(broker) if broker else ""


# --- the gateway ---------------------------------------------------------------------------------


@pytest.fixture
def make_gateway(tmp_path: Path, sink: Sink, sqlite_url: str) -> Iterator[Callable[..., Gateway]]:
    started: list[Gateway] = []

    def start(
        *,
        database_url: str | None = None,
        broker_url: str = "",
        imap: bool = False,
        clock: OffsetClock | None = None,
        prepare: Callable[[Runtime], None] | None = None,
        **overrides: Any,
    ) -> Gateway:
        """A gateway with the test directory loaded, then `prepare(runtime)`, then started: what a
        test sets up is in place before the first mail can be read."""
        settings = settings_for(
            tmp_path / "var",
            database_url or sqlite_url,
            broker_url=broker_url,
            sink_port=sink.port,
            **overrides,
        )
        gateway = Gateway(settings, clock or OffsetClock())
        started.append(gateway)
        gateway.start(imap=imap, prepare=prepare)
        sink.watch(gateway.outbox_quiet)
        return gateway

    yield start
    for gateway in reversed(started):
        gateway.stop()


@pytest.fixture
def gateway(make_gateway: Callable[..., Gateway]) -> Gateway:
    """The embedded default: SQLite, in-process workers, outbound to the sink."""
    return make_gateway()


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    if services.dovecot_binary() is None:
        missing("Dovecot (apt-get install dovecot-imapd)")
    server = Dovecot().start()
    yield server
    server.stop()


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.fixture(scope="session")
def dns() -> Iterator[Any]:
    """A DNS server on loopback publishing the test domains' SPF, DKIM and DMARC records.

    example.com and securecall.example sign with DKIM and publish SPF that does not cover
    loopback (so a mail from here passes only when signed) and DMARC p=reject.
    """
    from tests.support.dns_server import DkimKey, DnsServer

    server = DnsServer().start()
    server.keys = {}
    for domain in ("example.com", "securecall.example"):
        server.txt(domain, "v=spf1 ip4:192.0.2.10 -all")
        server.txt(f"_dmarc.{domain}", "v=DMARC1; p=reject; adkim=r; aspf=r")
        key = DkimKey(domain)
        key.publish(server)
        server.keys[domain] = key
    server.txt("other.example", "v=spf1 ip4:127.0.0.0/8 -all")  # SPF only, no DMARC record
    yield server
    server.stop()
