"""The outbox: 4xx retried with backoff, 5xx failed, lost and stale Deliveries recovered."""

from __future__ import annotations

import mailbox
from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from cli.serve import Services
from gateway.assembly import build
from gateway.core.settings import Settings
from gateway.outbound import notices
from gateway.outbound.contexts.requests import SenderUnregistered
from gateway.outbound.outbox import ACTORS, BULK_QUEUE, MAIL_QUEUE, QUEUES, SOC_QUEUE
from gateway.outbound.sending import Claimed, File
from gateway.storage.db import transaction
from gateway.storage.models import Delivery
from gateway.storage.tables import DELIVERIES
from tests.support.harness import Gateway, eventually, mail, populate, settings_for, smtp_send
from tests.support.sink import Sink
from workers.actors import declare
from workers.composer import compose
from workers.render import Rendered, Renderer
from workers.transport import make_transport


def deliveries(gateway: Gateway, to: str = "alice@example.com") -> list[Delivery]:
    with gateway.runtime.sessions.begin() as session:
        query = select(Delivery).where(Delivery.recipient == to).order_by(Delivery.id)
        return list(session.scalars(query))


def test_a_4xx_from_the_relay_is_retried_until_it_goes_through(
    make_gateway: Any, sink: Sink
) -> None:
    gateway = make_gateway(send_backoff=0.3)
    sink.refuse["alice@example.com"] = "451 4.3.0 Mailbox busy, try later"
    assert gateway.send(mail()).code == 250
    eventually(lambda: deliveries(gateway)[0].attempts >= 2)
    assert sink.to("alice@example.com") == []
    assert "451" in deliveries(gateway)[0].last_error
    del sink.refuse["alice@example.com"]
    sink.wait_to("alice@example.com", timeout=20)
    (delivery,) = eventually(lambda: [d for d in deliveries(gateway) if d.status == "sent"])
    assert delivery.attempts >= 2  # refused at least once, then sent by a retry


def test_a_5xx_from_the_relay_fails_the_delivery_without_retrying(
    make_gateway: Any, sink: Sink
) -> None:
    gateway = make_gateway(send_backoff=0.2)
    sink.refuse["alice@example.com"] = "550 5.1.1 No such user"
    assert gateway.send(mail()).code == 250
    (failed,) = eventually(lambda: [d for d in deliveries(gateway) if d.status == "failed"])
    assert "550" in failed.last_error
    sink.settle()
    assert deliveries(gateway)[0].attempts == 1


def test_a_delivery_that_keeps_getting_4xx_is_given_up_after_its_attempts(
    make_gateway: Any, sink: Sink
) -> None:
    gateway = make_gateway(send_backoff=0.1, send_attempts=3)
    sink.refuse["alice@example.com"] = "452 4.2.2 Mailbox full"
    assert gateway.send(mail()).code == 250
    (failed,) = eventually(lambda: [d for d in deliveries(gateway) if d.status == "failed"])
    assert failed.attempts == 3
    assert "gave up" in failed.last_error


NOTICE = SenderUnregistered(
    soc_phone="+1",
    soc_address="soc@securecall.example",
    outside_hours=False,
    wanted_language="en",
)


def _delivery_without_enqueueing(
    gateway: Gateway, recipient: str = "someone@example.org", status: str = "pending"
) -> int:
    """A Delivery written five minutes ago and never handed to the broker."""
    rt = gateway.runtime
    with transaction(rt.sessions) as conn:
        delivery_id, _queue = notices.answer(
            conn,
            rt,
            template="sender_unregistered",
            recipient=recipient,
            mail=None,
            context=NOTICE,
            now=rt.now() - timedelta(minutes=5),
        )
        if status == "sending":  # as a worker that was killed mid-send leaves it
            conn.execute(
                update(DELIVERIES)
                .where(DELIVERIES.c.id == delivery_id)
                .values(status="sending", claimed_at=rt.now() - timedelta(seconds=30))
            )
    return delivery_id


def test_the_sweep_sends_a_delivery_whose_queue_message_was_lost(
    make_gateway: Any, sink: Sink
) -> None:
    gateway = make_gateway(requeue_after=1.0)
    _delivery_without_enqueueing(gateway)  # written, never handed to the broker
    (notice,) = sink.wait_to("someone@example.org", timeout=10)
    assert notice.message["Subject"] == "Your message to SecureCall support"


def test_the_sweep_releases_a_delivery_a_lost_worker_left_sending(
    make_gateway: Any, sink: Sink
) -> None:
    gateway = make_gateway(stale_sending_after=1.0)
    _delivery_without_enqueueing(gateway, status="sending")
    # Only the sweep can take a Delivery out of "sending"; then it is sent once
    sink.wait_to("someone@example.org", timeout=10)
    sent = eventually(
        lambda: [d for d in deliveries(gateway, "someone@example.org") if d.status == "sent"]
    )
    assert sent[0].attempts == 1
    assert len(sink.settle_to("someone@example.org")) == 1


def test_after_a_restart_every_delivery_the_lost_in_process_queue_held_goes_out_at_once(
    tmp_path: Path, sink: Sink, sqlite_url: str
) -> None:
    """An embedded gateway killed with a backlog: its in-process queue is gone. The next one
    enqueues all of what the dead one had enqueued, more than one sweep takes (500), without
    waiting for requeue_after (an hour here)."""
    settings = settings_for(tmp_path / "var", sqlite_url, sink_port=sink.port, requeue_after=3600)
    rt = build(settings)
    populate(rt)
    total = 520
    with transaction(rt.sessions) as conn:
        for n in range(total):
            notices.answer(
                conn,
                rt,
                template="sender_unregistered",
                recipient=f"lost{n}@example.org",
                mail=None,
                context=NOTICE,
                now=rt.now(),
            )
        # as the killed process left them: handed to its queue a moment ago, never sent
        conn.execute(update(DELIVERIES).values(enqueued_at=rt.now() - timedelta(seconds=2)))
    services = Services(rt, workers=True, sweep=True)
    services.start()
    try:
        got = sink.wait_for(total, timeout=240)
    finally:
        services.stop()
    assert sorted(m.rcpt_tos[0] for m in got) == sorted(
        f"lost{n}@example.org" for n in range(total)
    )


def test_without_a_relay_outbound_mail_is_written_to_a_maildir(
    make_gateway: Any, tmp_path: Path
) -> None:
    box = tmp_path / "outbound"
    gateway = make_gateway(outbound_url=f"maildir:{box}")
    assert gateway.send(mail(message_id="<to-maildir@example.com>")).code == 250
    eventually(lambda: len(mailbox.Maildir(box)) == 2)  # the acknowledgement, the SOC's copy
    (written,) = [m for m in mailbox.Maildir(box) if m["To"] == "alice@example.com"]
    assert written["In-Reply-To"] == "<to-maildir@example.com>"
    assert "Service Request received" in written["Subject"]


def claimed(template: str, auto_submitted: str = "auto-replied") -> Claimed:
    """A Delivery as a worker holds it, for composing without a database."""
    return Claimed(
        id=1,
        template=template,
        audience="customer",
        language="en",
        recipient="alice@example.com",
        context={},
        message_id="<x.1@securecall.example>",
        in_reply_to=None,
        references="",
        auto_submitted=auto_submitted,
        attempts=1,
    )


def test_a_subject_with_line_breaks_never_becomes_an_extra_header(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, secret_key="k")
    delivery = claimed("request_opened")
    rendered = Rendered(
        subject="[SR-1] Hello\r\nBcc: victim@example.org\r\n\r\nbody", text="t\n", html=None
    )
    message = compose(delivery, rendered, settings)
    assert message["Bcc"] is None
    assert b"\nBcc:" not in message.as_bytes()
    assert message["Subject"] == "[SR-1] Hello Bcc: victim@example.org body"


def test_attached_files_keep_their_bytes_and_never_add_a_header(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, secret_key="k")
    delivery = claimed("soc_answer", auto_submitted="")
    files = [
        File("a\r\nBcc: victim@example.org\r\n.pdf", "application/pdf", b"%PDF-1.7\r\n"),
        File("winmail.dat/Résumé.txt", "text/plain\r\nX-Evil: 1", "é\n".encode()),
        File("forwarded", "message/rfc822", b"From: x@example.org\r\n\r\nhi\r\n"),
    ]
    flat = compose(delivery, Rendered("s", "t\n", None), settings, files).as_bytes()
    assert b"\nBcc:" not in flat
    assert b"\nX-Evil:" not in flat
    parsed = message_from_bytes(flat, policy=policy.default)
    got = [
        (p.get_filename(), p.get_content_type(), p.get_payload(decode=True))
        for p in parsed.iter_attachments()
    ]
    assert got == [
        ("a Bcc: victim@example.org .pdf", "application/pdf", b"%PDF-1.7\r\n"),
        ("Résumé.txt", "application/octet-stream", "é\n".encode()),
        ("forwarded.eml", "application/octet-stream", b"From: x@example.org\r\n\r\nhi\r\n"),
    ]


def test_an_unsafe_recipient_address_fails_the_delivery(make_gateway: Any, sink: Sink) -> None:
    gateway = make_gateway(requeue_after=0.5)
    _delivery_without_enqueueing(gateway, recipient="a@example.org>\r\nBcc: b@example.org")
    bad = "a@example.org>\r\nBcc: b@example.org"
    (failed,) = eventually(lambda: [d for d in deliveries(gateway, bad) if d.status == "failed"])
    assert "not a single mail address" in failed.last_error
    assert sink.settle() == []


def test_a_backlog_sends_the_customers_acknowledgements_before_the_socs_copies(
    tmp_path: Path, sink: Sink, sqlite_url: str
) -> None:
    """Ten SRs opened while no worker runs: twenty mails wait. One worker thread then sends the
    acknowledgements first (queue "mail") and the SOC's copies after (queue "soc")."""
    settings = settings_for(
        tmp_path / "var", sqlite_url, sink_port=sink.port, worker_threads=1, autoreply_per_hour=10
    )
    rt = build(settings)
    populate(rt)
    intake = Services(rt, smtp=True)
    intake.start()
    workers = Services(rt, workers=True)
    try:
        for n in range(10):
            assert (
                smtp_send(
                    settings.smtp_port, mail(subject=f"Question about firewall rule {n}")
                ).code
                == 250
            )
        with transaction(rt.sessions, readonly=True) as conn:
            queues = dict(conn.execute(select(Delivery.recipient, Delivery.queue).distinct()).all())
        assert queues == {"alice@example.com": "mail", settings.soc_queue_address: "soc"}
        assert sink.mails == []  # nothing is sent without a worker

        workers.start()
        order = [m.rcpt_tos[0] for m in sink.wait_for(20)]
        # the worker may take one copy before the acknowledgements' consumer has filled its
        # queue; after that, every acknowledgement goes before the rest of the copies
        assert order.count("alice@example.com") == 10
        assert order[:11].count("alice@example.com") == 10, order
    finally:
        workers.stop()
        intake.stop()
        rt.sessions.kw["bind"].dispose()


def test_each_queue_has_its_sending_actor_and_the_customers_queue_goes_first(
    tmp_path: Path, sink: Sink, sqlite_url: str
) -> None:
    settings = settings_for(tmp_path / "var", sqlite_url, sink_port=sink.port)
    rt = build(settings)
    try:
        declare(
            rt.outbox.broker,
            rt,
            make_transport(settings.outbound, settings.outbound_ca_file),
            Renderer(),
        )
        actors = {q: rt.outbox.broker.get_actor(ACTORS[q]) for q in QUEUES}
        assert {q: a.queue_name for q, a in actors.items()} == {q: q for q in QUEUES}
        assert actors[MAIL_QUEUE].priority < actors[SOC_QUEUE].priority
        assert actors[SOC_QUEUE].priority < actors[BULK_QUEUE].priority
    finally:
        rt.outbox.broker.close()
        rt.sessions.kw["bind"].dispose()
