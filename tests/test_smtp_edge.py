"""The SMTP edge on the test's own event loop (pytest-asyncio): aiosmtpd's session with the
gateway's handler, spoken to by an async client (aiosmtplib). Steps 1 and 2 of one mail."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiosmtplib
import pytest
import pytest_asyncio
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from gateway.assembly import build
from gateway.core.runtime import Runtime
from gateway.edges.smtp import IntakeHandler, smtp_options
from gateway.edges.smtp_data import IntakeSMTP
from gateway.storage.models import ServiceRequest, StoredMail
from tests.support.harness import INTAKE, failing, mail, populate, settings_for
from tests.support.sink import Sink

ALICE = "alice@example.com"


@dataclass
class Edge:
    port: int
    rt: Runtime

    async def client(self) -> aiosmtplib.SMTP:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=self.port, timeout=30)
        await smtp.connect()
        return smtp

    def count(self, model: type) -> int:
        with self.rt.sessions.begin() as session:
            return session.scalar(select(func.count()).select_from(model)) or 0


@pytest_asyncio.fixture
async def edge(tmp_path: Path, sqlite_url: str, sink: Sink) -> AsyncIterator[Edge]:
    """The gateway's SMTP session served on this test's loop; mail is stored, nothing is sent."""
    settings = settings_for(
        tmp_path / "var",
        sqlite_url,
        sink_port=sink.port,
        smtp_sender_rate=3,
        max_message_size=64 * 1024,
    )
    rt = build(settings)
    populate(rt)
    handler = IntakeHandler(rt)
    loop = asyncio.get_running_loop()
    options = smtp_options(settings)
    server = await loop.create_server(
        lambda: IntakeSMTP(handler, loop=loop, **options), "127.0.0.1", 0
    )
    port = server.sockets[0].getsockname()[1]
    try:
        yield Edge(port, rt)
    finally:
        server.close()
        await server.wait_closed()
        handler.close()
        rt.sessions.kw["bind"].dispose()


@pytest.mark.asyncio
async def test_a_mail_from_a_contact_is_answered_250_once_it_is_stored(edge: Edge) -> None:
    smtp = await edge.client()
    try:
        response = await smtp.sendmail(ALICE, [INTAKE], mail(message_id="<edge-1@example.com>"))
    finally:
        await smtp.quit()
    _refused, text = response
    assert "stored as" in text
    assert edge.count(StoredMail) == 1
    assert edge.count(ServiceRequest) == 1


@pytest.mark.asyncio
async def test_rcpt_for_an_address_that_is_not_the_gateways_is_refused_with_550(
    edge: Edge,
) -> None:
    smtp = await edge.client()
    try:
        await smtp.mail(ALICE)
        with pytest.raises(aiosmtplib.SMTPRecipientRefused) as refused:
            await smtp.rcpt("someone@elsewhere.example")
    finally:
        await smtp.quit()
    assert refused.value.code == 550


@pytest.mark.asyncio
async def test_a_declared_size_over_the_limit_is_refused_at_mail_from_with_552(
    edge: Edge, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "gateway.intake.receive")
    smtp = await edge.client()
    try:
        await smtp.ehlo()
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
            await smtp.mail(ALICE, options=[f"SIZE={1024 * 1024}"])
    finally:
        await smtp.quit()
    assert refused.value.code == 552
    assert edge.count(StoredMail) == 0
    # R6.3: the refusal is logged, with whom it refused
    said = [r.getMessage() for r in caplog.records if r.name == "gateway.intake.receive"]
    assert any(m.startswith("refused 552 from 127.0.0.1") for m in said), said


@pytest.mark.asyncio
async def test_a_storage_failure_answers_451_and_keeps_nothing(edge: Edge) -> None:
    engine = edge.rt.sessions.kw["bind"]
    locked = OperationalError("", {}, Exception("database is locked"))
    smtp = await edge.client()
    try:
        with (
            failing(engine, "INSERT INTO raw_mails", locked) as refused_statements,
            pytest.raises(aiosmtplib.SMTPDataError) as refused,
        ):
            await smtp.sendmail(ALICE, [INTAKE], mail(message_id="<edge-2@example.com>"))
    finally:
        await smtp.quit()
    assert refused.value.code == 451
    assert refused_statements  # the insert was tried, and failed
    assert edge.count(StoredMail) == 0


@pytest.mark.asyncio
async def test_a_sender_over_its_rate_is_asked_to_come_back_with_451(edge: Edge) -> None:
    codes = []
    for _ in range(4):
        smtp = await edge.client()
        try:
            code, _ = await smtp.mail(ALICE)
            codes.append(code)
        except aiosmtplib.SMTPSenderRefused as exc:
            codes.append(exc.code)
        finally:
            await smtp.quit()
    assert codes == [250, 250, 250, 451]
