"""The SOC side by mail: answers relayed to the customer, internal notes, commands (R2.1, R2.2)."""

from __future__ import annotations

from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from sqlalchemy import select

from gateway.requests import listings
from gateway.storage.models import Deadline, Message, ServiceRequest
from tests.support.harness import Gateway, eventually, mail, sr_id_of
from tests.support.sink import Received, Sink
from tests.support.tnef import winmail

ALICE = "alice@example.com"
ANALYST = "analyst@securecall.example"
SOC_QUEUE = "soc-queue@securecall.example"
NOTES = "notes@securecall.example"


def opened(gateway: Gateway, sink: Sink, **kwargs: Any) -> tuple[str, Received]:
    """An SR opened by Alice; returns its ID and the SOC's notification of it."""
    assert gateway.send(mail(message_id="<first@example.com>", **kwargs)).code == 250
    notification = sink.wait_to(SOC_QUEUE)[0]
    return sr_id_of(notification), notification


def outlook_reply(
    notification: Received, body: str, sender: str = ANALYST, to: str = "soc@securecall.example"
) -> bytes:
    """An analyst's answer as Outlook writes it: new text on top, the notification quoted below."""
    quoted = f"{body}\n\nSam Analyst\nSecureCall SOC\n\n{outlook_quote(notification)}"
    return mail(
        sender=sender,
        to=to,
        subject=f"RE: {notification.message['Subject']}",
        body=quoted,
        in_reply_to=notification.message["Message-ID"],
        references=notification.message["Message-ID"],
        name="Sam Analyst",
    )


def outlook_quote(notification: Received) -> str:
    """The notification as Outlook quotes it: its header block, then its text."""
    return (
        "-----Original Message-----\n"
        "From: SecureCall SOC <soc@securecall.example>\n"
        "Sent: Wednesday, November 18, 2026 10:00 AM\n"
        f"To: {SOC_QUEUE}\n"
        f"Subject: {notification.message['Subject']}\n\n"
        f"{notification.text}"
    )


def show(gateway: Gateway, sr_id: str) -> dict[str, Any]:
    with gateway.runtime.sessions.begin() as session:
        shown = listings.request(session, sr_id)
    assert shown is not None
    return shown


def test_a_soc_answer_reaches_the_customer_threaded_and_without_the_quoted_notification(
    gateway: Gateway, sink: Sink
) -> None:
    sr_id, notification = opened(gateway, sink)
    assert "Answer this mail to reply" in notification.text  # internal text, to be kept inside
    reply = outlook_reply(notification, "Hello Alice,\n\nwe restarted the tunnel on our side.")
    assert gateway.send(reply, mail_from=ANALYST).code == 250
    # The customer gets the answer, from the gateway, threaded under her own mail
    answer = sink.wait_to(ALICE, 2)[1]  # after the acknowledgement
    headers = answer.message
    assert headers["From"] == "SecureCall SOC <soc@securecall.example>"
    assert headers["Subject"] == f"Re: [{sr_id}] VPN tunnel to Frankfurt is down"
    assert headers["In-Reply-To"] == "<first@example.com>"
    assert "<first@example.com>" in headers["References"]
    assert headers["Auto-Submitted"] is None  # a person wrote it
    assert "we restarted the tunnel on our side." in answer.text
    for internal in (
        "Answer this mail",
        "Original Message",
        "Entitlement",
        "#priority",
        SOC_QUEUE,
        "New P3 SR",
    ):
        assert internal not in answer.text
    assert "Sam Analyst, SecureCall Security Operations Center" in answer.text
    # And it is the SR's Initial Response (§3.5.3): that clock stops
    shown = show(gateway, sr_id)
    assert shown["initial_response_at"] is not None
    (target,) = [d for d in shown["deadlines"] if d["kind"] == "initial_response"]
    assert target["met_at"] == shown["initial_response_at"]
    assert shown["messages"][1]["author"] == "soc"


def with_files(data: bytes, files: list[tuple[str, str, bytes]]) -> bytes:
    message = message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    for name, kind, content in files:
        maintype, subtype = kind.split("/")
        message.add_attachment(content, maintype, subtype, filename=name)
    return message.as_bytes(policy=policy.SMTP)


def test_files_attached_to_a_soc_answer_reach_the_customer_byte_for_byte(
    gateway: Gateway, sink: Sink
) -> None:
    sr_id, notification = opened(gateway, sink)
    report = bytes(range(256)) * 64
    reply = with_files(
        outlook_reply(notification, "Hello Alice,\n\nour report is attached."),
        [
            ("Bericht über den Tunnel.pdf", "application/pdf", report),
            # Outlook's winmail.dat: its file goes to the customer, the container does not
            ("winmail.dat", "application/ms-tnef", winmail([("tunnel.conf", b"mtu 1400\n")])),
        ],
    )
    assert gateway.send(reply, mail_from=ANALYST).code == 250
    answer = sink.wait_to(ALICE, 2)[1]
    assert "our report is attached." in answer.text
    files = {p.get_filename(): p.get_content() for p in answer.message.iter_attachments()}
    assert files == {"Bericht über den Tunnel.pdf": report, "tunnel.conf": b"mtu 1400\n"}
    kinds = {p.get_filename(): p.get_content_type() for p in answer.message.iter_attachments()}
    assert kinds["Bericht über den Tunnel.pdf"] == "application/pdf"
    assert sr_id in answer.message["Subject"]


def test_the_socs_copy_carries_the_customers_files_up_to_the_limit(
    make_gateway: Any, sink: Sink
) -> None:
    gateway = make_gateway(soc_copy_files_limit=5000)
    capture, log = bytes(range(256)) * 16, b"Nov 18 09:00 tunnel down\n" * 300  # 4 KB, 7.5 KB
    data = with_files(
        mail(message_id="<files@example.com>"),
        [
            ("capture.pcap", "application/vnd.tcpdump.pcap", capture),
            ("firewall.log", "text/plain", log),
        ],
    )
    assert gateway.send(data).code == 250
    copy = sink.wait_to(SOC_QUEUE)[0]
    files = {p.get_filename(): p.get_content() for p in copy.message.iter_attachments()}
    assert files == {"capture.pcap": capture}  # the log would pass the 5,000 bytes
    assert "firewall.log (7500 bytes)" in copy.text
    assert "Not attached here: 1 file(s) over the size limit" in copy.text
    # the customer's own acknowledgement carries nothing back
    (ack,) = sink.wait_to(ALICE)
    assert list(ack.message.iter_attachments()) == []


def test_the_customers_answer_to_the_relayed_mail_threads_back(
    gateway: Gateway, sink: Sink
) -> None:
    sr_id, notification = opened(gateway, sink)
    gateway.send(outlook_reply(notification, "Please send the IKE logs."), mail_from=ANALYST)
    relayed = sink.wait_to(ALICE, 2)[1]
    again = mail(
        subject="the logs",
        body="Attached are the logs you asked for.",
        in_reply_to=relayed.message["Message-ID"],
    )
    assert gateway.send(again).code == 250
    eventually(lambda: len(show(gateway, sr_id)["messages"]) == 3)
    # The SOC is told of the customer's reply, so that it can answer from there again
    replies = eventually(
        lambda: [m for m in sink.to(SOC_QUEUE) if "Customer reply" in m.message["Subject"]]
    )
    assert "Attached are the logs" in replies[0].text


def test_every_customer_contact_on_the_sr_gets_the_answer(gateway: Gateway, sink: Sink) -> None:
    sr_id, notification = opened(gateway, sink)
    colleague = mail(
        sender="dana@example.com",
        subject=f"Re: [{sr_id}] VPN",
        body="Adding myself: I manage this account.",
    )
    assert gateway.send(colleague, mail_from="dana@example.com").code == 250
    gateway.send(outlook_reply(notification, "The tunnel is back."), mail_from=ANALYST)
    assert "The tunnel is back." in sink.wait_to("dana@example.com")[0].text
    assert "The tunnel is back." in sink.wait_to(ALICE, 2)[1].text


def test_an_internal_note_never_reaches_the_customer(gateway: Gateway, sink: Sink) -> None:
    sr_id, notification = opened(gateway, sink)
    by_address = outlook_reply(
        notification, "Customer runs an old firmware; check 7.0.12.", to=NOTES
    )
    assert gateway.send(by_address, mail_from=ANALYST, rcpt=NOTES).code == 250
    by_command = outlook_reply(notification, "#note\nThe firewall admin is on leave.")
    assert gateway.send(by_command, mail_from=ANALYST).code == 250
    notes = [m["reply_text"] for m in show(gateway, sr_id)["messages"] if m["author"] == "soc"]
    assert [n.split("\n")[0] for n in notes] == [
        "Customer runs an old firmware; check 7.0.12.",
        "The firewall admin is on leave.",
    ]
    with gateway.runtime.sessions.begin() as session:
        internal = session.scalars(select(Message.internal).where(Message.author_kind == "soc"))
        assert list(internal) == [True, True]
    sink.settle()
    assert len(sink.to(ALICE)) == 1  # only the acknowledgement
    assert show(gateway, sr_id)["initial_response_at"] is None  # a note is no answer


def test_soc_commands_set_priority_state_and_assignee_and_are_confirmed(
    gateway: Gateway, sink: Sink
) -> None:
    sr_id, notification = opened(gateway, sink)
    commands = "#priority 2\n#state waiting\n#assign me\n\nWe are on it."
    assert gateway.send(outlook_reply(notification, commands), mail_from=ANALYST).code == 250
    shown = show(gateway, sr_id)
    assert (shown["priority"], shown["state"]) == (2, "waiting")
    with gateway.runtime.sessions.begin() as session:
        sr = session.scalars(select(ServiceRequest).where(ServiceRequest.public_id == sr_id)).one()
        assert sr.assigned_to == ANALYST
        # R3.4: the Initial Response target moved to 2 hours after opening
        (target,) = session.scalars(select(Deadline).where(Deadline.kind == "initial_response"))
        assert target.due_at - target.started_at == timedelta(hours=2)
        assert target.started_at == sr.created_at
    confirmation = sink.wait_to(ANALYST)[0]
    assert confirmation.message["Subject"] == f"[{sr_id}] Commands: 3 done, 0 refused"
    # The text after the commands still goes to the customer, without the command lines
    relayed = sink.wait_to(ALICE, 2)[1]
    assert "We are on it." in relayed.text
    assert "#priority" not in relayed.text


def quoting_reply(notification: Received, top: str, style: str = "outlook") -> bytes:
    """An analyst's reply with only `top` above the quoted notification, and no signature of
    its own: Outlook's header block, or Gmail's attribution line and "> " quoting."""
    if style == "outlook":
        quoted = outlook_quote(notification)
    else:
        quoted = "On Wed, 18 Nov 2026 at 10:00, SecureCall SOC <soc@securecall.example> wrote:\n"
        quoted += "".join(f"> {line}\n" for line in notification.text.splitlines())
    return mail(
        sender=ANALYST,
        subject=f"RE: {notification.message['Subject']}",
        body=f"{top}\n\n{quoted}",
        in_reply_to=notification.message["Message-ID"],
        references=notification.message["Message-ID"],
    )


def test_an_answer_with_nothing_of_its_own_sends_nothing_and_its_sender_is_told(
    gateway: Gateway, sink: Sink
) -> None:
    sr_id, notification = opened(gateway, sink)
    tops = [
        ("Sent from my iPhone", "outlook"),
        ("", "outlook"),
        ("--\nSam", "outlook"),
        ("", "gmail"),
    ]
    for top, style in tops:
        reply = quoting_reply(notification, top, style)
        assert gateway.send(reply, mail_from=ANALYST).code == 250
    told = sink.wait_to(ANALYST, len(tops))
    for mail_told in told:
        assert mail_told.message["Subject"] == f"[{sr_id}] Your answer was not sent"
        assert "nothing was sent to the customer" in mail_told.text
    sink.settle()
    assert len(sink.to(ALICE)) == 1  # the acknowledgement only: the notification never went out
    assert show(gateway, sr_id)["initial_response_at"] is None  # no answer was given


def test_an_answer_of_only_a_file_sends_the_file_without_the_quoted_notification(
    gateway: Gateway, sink: Sink
) -> None:
    sr_id, notification = opened(gateway, sink)
    report = b"%PDF-1.4 the tunnel report\n"
    reply = with_files(
        quoting_reply(notification, "Sent from my iPhone"),
        [("report.pdf", "application/pdf", report)],
    )
    assert gateway.send(reply, mail_from=ANALYST).code == 250
    answer = sink.wait_to(ALICE, 2)[1]
    assert [p.get_content() for p in answer.message.iter_attachments()] == [report]
    assert "Answer this mail to reply" not in answer.text  # the SOC's own notification
    assert "New Service Request" not in answer.text
    assert sr_id in answer.message["Subject"]
    assert show(gateway, sr_id)["initial_response_at"] is not None


def test_a_note_marker_as_mail_clients_write_it_keeps_the_mail_internal(
    gateway: Gateway, sink: Sink
) -> None:
    sr_id, notification = opened(gateway, sink)
    markers = ["*#note*", "**#note**", "\u200b#note", "# note", "\uff03note", "#NOTE:"]
    for n, marker in enumerate(markers):
        reply = outlook_reply(notification, f"{marker}\nSecret {n}: the admin is on leave.")
        assert gateway.send(reply, mail_from=ANALYST).code == 250
    notes = [m["reply_text"] for m in show(gateway, sr_id)["messages"] if m["author"] == "soc"]
    assert [n.split("\n")[0] for n in notes] == [
        f"Secret {n}: the admin is on leave." for n in range(len(markers))
    ]
    with gateway.runtime.sessions.begin() as session:
        internal = session.scalars(select(Message.internal).where(Message.author_kind == "soc"))
        assert list(internal) == [True] * len(markers)
    sink.settle()
    assert len(sink.to(ALICE)) == 1  # only the acknowledgement


def test_an_unknown_command_keeps_the_whole_mail_from_the_customer(
    gateway: Gateway, sink: Sink
) -> None:
    sr_id, notification = opened(gateway, sink)
    typo = outlook_reply(notification, "#notes\nThe firewall admin is on leave.")
    assert gateway.send(typo, mail_from=ANALYST).code == 250
    (confirmation,) = sink.wait_to(ANALYST)
    assert confirmation.message["Subject"] == f"[{sr_id}] Commands: 0 done, 1 refused"
    assert "REFUSED  #notes  -  unknown command: nothing of this mail was sent" in (
        confirmation.text
    )
    with gateway.runtime.sessions.begin() as session:
        (internal,) = session.scalars(select(Message.internal).where(Message.author_kind == "soc"))
        assert internal is True
    sink.settle()
    assert len(sink.to(ALICE)) == 1  # only the acknowledgement
    # Markdown's heading is text, not a command: the answer goes out
    heading = outlook_reply(notification, "# Summary\nWe restarted the tunnel.")
    assert gateway.send(heading, mail_from=ANALYST).code == 250
    assert "We restarted the tunnel." in sink.wait_to(ALICE, 2)[1].text


def test_a_command_from_a_customer_changes_nothing_and_stays_text(
    gateway: Gateway, sink: Sink
) -> None:
    sr_id, _notification = opened(gateway, sink)
    sneaky = mail(subject=f"Re: [{sr_id}] VPN", body="#priority 1\n#close\n#assign me\nThanks!")
    assert gateway.send(sneaky).code == 250
    shown = eventually(lambda: (s := show(gateway, sr_id)) and len(s["messages"]) == 2 and s)
    assert (shown["priority"], shown["state"]) == (3, "open")
    assert shown["messages"][1]["reply_text"].startswith("#priority 1\n#close")
    sink.settle()
    assert sink.to(ALICE)[1:] == []  # no confirmation, nothing else


def test_commands_naming_no_sr_are_refused_with_the_reason(gateway: Gateway, sink: Sink) -> None:
    orphan = mail(sender=ANALYST, subject="quick one", body="#priority 1\nplease bump")
    assert gateway.send(orphan, mail_from=ANALYST).code == 250
    (refusal,) = sink.wait_to(ANALYST)
    assert "REFUSED  #priority 1  -  no Service Request named" in refusal.text


def test_closing_an_sr_by_command(gateway: Gateway, sink: Sink) -> None:
    sr_id, notification = opened(gateway, sink)
    gateway.send(
        outlook_reply(notification, "#close\nSolved by the firmware update."), mail_from=ANALYST
    )
    shown = show(gateway, sr_id)
    assert shown["state"] == "closed"
    with gateway.runtime.sessions.begin() as session:
        running = session.scalars(select(Deadline).where(Deadline.next_at.is_not(None)))
        assert [d.kind for d in running] == []  # no clock runs on a closed SR
