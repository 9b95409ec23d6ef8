"""Step 10: the mailer, in two rooms: composing a Delivery's mail (workers/composer.py) and
transporting it (workers/transport.py); their public names, for the entry points that import
them from here."""

from workers.composer import Inline, as_bytes, compose, envelope_sender
from workers.transport import (
    MaildirTransport,
    PermanentFailure,
    SmtpTransport,
    TemporaryFailure,
    Transport,
    make_transport,
)

__all__ = [
    "Inline",
    "MaildirTransport",
    "PermanentFailure",
    "SmtpTransport",
    "TemporaryFailure",
    "Transport",
    "as_bytes",
    "compose",
    "envelope_sender",
    "make_transport",
]
