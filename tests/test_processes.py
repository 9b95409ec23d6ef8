"""Several listener processes on one port (`gateway smtp --processes 2`, SO_REUSEPORT): every mail
stored once and acknowledged, a killed child started again without losing a 250, SIGTERM drains."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.storage.db import make_engine, make_sessions
from gateway.storage.models import StoredMail
from tests.support.harness import INTAKE, Process, eventually, mail, settings_env, settings_for
from tests.support.services import free_port
from tests.support.sink import Received, Sink

ALICE = "alice@example.com"
pytestmark = pytest.mark.slow


@dataclass
class Listeners:
    """A running `gateway smtp --processes 2`, its relay and its database."""

    process: Process
    port: int
    relay: Sink
    database_url: str

    @property
    def supervisor(self) -> int:
        assert self.process.proc is not None
        return self.process.proc.pid

    def children(self) -> list[int]:
        with open(f"/proc/{self.supervisor}/task/{self.supervisor}/children") as f:
            return [int(pid) for pid in f.read().split()]

    def listening(self) -> list[int]:
        """The children that hold a listening socket on the port."""
        inodes = _sockets(self.port, state="0A")  # 0A: LISTEN
        return [pid for pid in self.children() if _owns(pid, inodes)]

    def stored(self) -> Counter[str]:
        engine = make_engine(self.database_url)
        with make_sessions(engine).begin() as session:
            ids = session.scalars(select(StoredMail.message_id)).all()
        engine.dispose()
        return Counter(ids)


def _sockets(port: int, *, state: str, peer: int | None = None) -> set[str]:
    """The inodes of the TCP sockets on local `port` in `state` (with `peer` as remote port)."""
    found = set()
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local, remote = int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16)
            if local == port and fields[3] == state and (peer is None or remote == peer):
                found.add(fields[9])
    return found


def _owns(pid: int, inodes: set[str]) -> bool:
    links = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            links.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            continue
    return any(f"socket:[{inode}]" in links for inode in inodes)


def served_by(listeners: Listeners, client: smtplib.SMTP) -> int:
    """The child process whose socket answered this client (it has greeted, so it accepted)."""
    assert client.sock is not None
    inodes = _sockets(listeners.port, state="01", peer=client.sock.getsockname()[1])
    owners = [pid for pid in listeners.children() if _owns(pid, inodes)]
    assert len(owners) == 1, owners
    return owners[0]


@pytest.fixture(params=["sqlite", "postgres"])
def listeners(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Listeners]:
    database_url = request.getfixturevalue(f"{request.param}_url")
    relay = Sink(free_port()).start()
    settings = settings_for(
        tmp_path / "var",
        database_url,
        sink_port=relay.port,
        autoreply_per_hour=10**6,
        autoreply_per_day=10**6,
        smtp_sender_rate=10**6,
        requeue_after=3.0,
        stale_sending_after=3.0,
    )
    env = settings_env(settings)
    subprocess.run(
        [sys.executable, "-m", "cli", "demo"], env=env, check=True, timeout=60, capture_output=True
    )
    process = Process.gateway(["smtp", "--processes", "2"], env, tmp_path / "gateway.log")
    process.start(wait_port=settings.smtp_port, timeout=60)
    running = Listeners(process, settings.smtp_port, relay, database_url)
    try:
        eventually(lambda: len(running.listening()) == 2, timeout=60)
        yield running
    finally:
        process.stop()
        relay.stop()


def send_until_250(port: int, message_ids: list[str], accepted: list[str]) -> None:
    """Each mail until it got its 250, retried like an MTA (refusals, broken connections)."""
    deadline = time.monotonic() + 120
    for message_id in message_ids:
        while time.monotonic() < deadline:
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
                    client.sendmail(ALICE, [INTAKE], mail(message_id=message_id))
                accepted.append(message_id)
                break
            except (smtplib.SMTPException, OSError):
                time.sleep(0.1)


def send_from_clients(listeners: Listeners, ids: list[str], clients: int = 4) -> list[str]:
    accepted: list[str] = []
    threads = [
        threading.Thread(target=send_until_250, args=(listeners.port, ids[k::clients], accepted))
        for k in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return accepted


def acknowledged(relay: Sink, ids: set[str], timeout: float = 120) -> set[str]:
    def acks(mails: list[Received]) -> set[str]:
        return {m.message["In-Reply-To"] for m in mails if ALICE in m.rcpt_tos}

    relay.wait_until(lambda mails: ids <= acks(mails), timeout)
    return acks(relay.mails)


def send_on(client: smtplib.SMTP, message_id: str, replies: list[int]) -> None:
    client.ehlo("client.example.com")
    client.mail(ALICE)
    client.rcpt(INTAKE)
    replies.append(client.data(mail(message_id=message_id))[0])


def connection_to_each(listeners: Listeners) -> dict[int, smtplib.SMTP]:
    """One open connection to each of the two children (the kernel picks; try until both)."""
    clients: dict[int, smtplib.SMTP] = {}
    for _ in range(200):
        client = smtplib.SMTP("127.0.0.1", listeners.port, timeout=30)
        pid = served_by(listeners, client)
        if pid in clients:
            client.close()
        else:
            clients[pid] = client
        if len(clients) == 2:
            return clients
    raise AssertionError(f"200 connections, all to {list(clients)}")


@pytest.mark.timeout(300)
def test_mails_from_several_clients_and_duplicates_to_both_processes_are_each_stored_once(
    listeners: Listeners,
) -> None:
    # Given two listener processes on one port
    ids = [f"<procs-{n}@example.com>" for n in range(120)]
    # When four clients send 120 mails, each on a connection of its own
    accepted = send_from_clients(listeners, ids)
    # … and five more mails are each sent twice at once, once to each process
    duplicates = [f"<twice-{n}@example.com>" for n in range(5)]
    replies: list[int] = []
    for message_id in duplicates:
        clients = connection_to_each(listeners)
        threads = [
            threading.Thread(target=send_on, args=(client, message_id, replies))
            for client in clients.values()
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for client in clients.values():
            client.quit()
    # Then every mail got its 250, is stored exactly once, and its acknowledgement went out
    assert sorted(accepted) == sorted(ids)
    assert replies == [250] * 10
    stored = listeners.stored()
    assert set(stored) == {*ids, *duplicates}
    assert max(stored.values()) == 1
    assert acknowledged(listeners.relay, {*ids, *duplicates}) >= {*ids, *duplicates}


@pytest.mark.timeout(300)
def test_a_killed_listener_process_loses_no_mail_that_had_its_250_and_is_started_again(
    listeners: Listeners,
) -> None:
    # Given two listener processes taking mail from four clients
    ids = [f"<kill-{n}@example.com>" for n in range(150)]
    accepted: list[str] = []
    senders = [
        threading.Thread(target=send_until_250, args=(listeners.port, ids[k::4], accepted))
        for k in range(4)
    ]
    for sender in senders:
        sender.start()
    # When one of them is killed (SIGKILL) once a third of the mails were answered
    eventually(lambda: len(accepted) >= 50, timeout=120)
    before = listeners.children()
    os.kill(before[0], signal.SIGKILL)
    for sender in senders:
        sender.join()
    # Then the supervisor has started another in its place, listening on the same port …
    eventually(lambda: len(listeners.listening()) == 2, timeout=60)
    after = listeners.children()
    assert before[0] not in after
    assert before[1] in after
    # … and every mail was answered 250 once, stored once and acknowledged
    assert sorted(accepted) == sorted(ids)
    stored = listeners.stored()
    assert set(stored) == set(ids)
    assert max(stored.values()) == 1
    assert acknowledged(listeners.relay, set(ids)) >= set(ids)


@pytest.mark.timeout(120)
def test_sigterm_lets_the_mail_under_way_finish_then_stops_every_process(
    listeners: Listeners, request: pytest.FixtureRequest
) -> None:
    # Given a client in the middle of a mail, and another between two mails, on each process
    clients = connection_to_each(listeners)
    busy, idle = clients.values()
    for client in (busy, idle):
        request.addfinalizer(client.close)
    busy.ehlo("client.example.com")
    assert busy.mail(ALICE)[0] == 250
    assert busy.rcpt(INTAKE)[0] == 250
    idle.ehlo("client.example.com")
    children = listeners.children()
    # When the supervisor is asked to stop
    os.kill(listeners.supervisor, signal.SIGTERM)
    # Then no new connection is taken …
    eventually(lambda: not listeners.listening(), timeout=30)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", listeners.port), timeout=5).close()
    # … the idle session is told 421, the mail under way still gets its 250, and then 421
    assert idle.getreply()[0] == 421
    assert busy.data(mail(message_id="<under-way@example.com>"))[0] == 250
    assert busy.getreply()[0] == 421
    # … and every process ends, the supervisor with status 0
    assert listeners.process.proc is not None
    assert listeners.process.proc.wait(timeout=60) == 0
    assert not any(os.path.exists(f"/proc/{pid}") for pid in children)
    assert listeners.stored()["<under-way@example.com>"] == 1


def test_a_port_taken_makes_gateway_smtp_processes_fail(tmp_path: Path, sqlite_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = settings_for(tmp_path / "var", sqlite_url, sink_port=free_port(), smtp_port=port)
        result = subprocess.run(
            [sys.executable, "-m", "cli", "smtp", "--processes", "2"],
            env=settings_env(settings),
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    assert result.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_a_sqlite_writer_holds_the_write_lock_file_against_other_processes(sqlite_url: str) -> None:
    # Given a SQLite database and a transaction writing to it in this process
    engine = make_engine(sqlite_url)
    lock_file = f"{Path(sqlite_url.removeprefix('sqlite:///')).resolve()}.write.lock"
    try_lock = [
        sys.executable,
        "-c",
        "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR); "
        "fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)",
        lock_file,
    ]
    try:
        with make_sessions(engine).begin() as session:
            session.scalars(select(StoredMail.message_id)).all()
            # Then another process cannot take the lock while the transaction is open …
            assert subprocess.run(try_lock, capture_output=True, check=False).returncode != 0
        # … and can once it committed
        assert subprocess.run(try_lock, capture_output=True, check=False).returncode == 0
    finally:
        engine.dispose()


def test_listener_processes_that_cannot_start_make_the_supervisor_fail(
    tmp_path: Path, sqlite_url: str
) -> None:
    # Given a DKIM key that the listeners' workers cannot read (the supervisor does not look)
    key = tmp_path / "broken.key"
    key.write_text("not a key\n")
    settings = settings_for(
        tmp_path / "var",
        sqlite_url,
        sink_port=free_port(),
        dkim_key_file=str(key),
        dkim_selector="s1",
    )
    # When `gateway smtp --processes 2` starts
    result = subprocess.run(
        [sys.executable, "-m", "cli", "smtp", "--processes", "2"],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # Then it fails, and says so, with no listener left behind
    assert result.returncode != 0
    assert "the listener processes could not start" in result.stderr
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", settings.smtp_port), timeout=5).close()
