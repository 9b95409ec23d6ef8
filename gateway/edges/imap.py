"""Step 1′, the IMAP edge: poll one mailbox, IDLE where offered (RFC 2177), polling otherwise.

Messages are fetched with BODY.PEEK[] (no \\Seen set) and moved to the Processed folder (or
flagged) only after `receive` committed them; a crash in between delivers the mail again, and
intake's deduplication stores it once. A mail whose sender could not be checked for DNS trouble
stays in the mailbox, untouched, for the next pass (R6.6). UIDVALIDITY is tracked (RFC 3501
§2.3.1.1). TLS is required (R6.7): imaps://, or STARTTLS on imap://, unless `?tls=none` says
otherwise; a server that does not offer STARTTLS is refused, since anyone in the path can strip
the offer.
"""

from __future__ import annotations

import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import cast
from urllib.parse import unquote, urlsplit

import sqlalchemy as sa
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from gateway.core.runtime import Runtime
from gateway.core.validators import tls_mode
from gateway.intake.receipts import RawMail, StorageError, TemporaryAuthenticationFailure
from gateway.intake.receive import receive
from gateway.observe import metrics
from gateway.storage.db import transaction
from gateway.storage.models import ImapState

log = logging.getLogger(__name__)
IMAP_STATES = cast(sa.Table, ImapState.__table__)
PROCESSED_KEYWORD = "$SecureCallProcessed"
FETCH_BATCH = 25  # messages per UID FETCH: bounds memory with large mails
# Mails of one batch handed to `receive` at once: a mail's parse and reading overlap another's
# commit (SQLite's fsync, a PostgreSQL round trip), as with parallel SMTP connections.
RECEIVE_THREADS = 4
# A larger mail is received alone: parsing one costs several times its size in memory.
PARALLEL_BELOW = 1_000_000  # bytes


@dataclass(frozen=True)
class MailboxUrl:
    """imap://user:password@host:port/FOLDER (STARTTLS required; `?tls=none`: plain) or
    imaps://… (TLS)."""

    host: str
    port: int
    username: str
    password: str
    folder: str
    tls: str  # implicit | starttls | none

    @property
    def key(self) -> str:
        return f"{self.username}@{self.host}:{self.port}/{self.folder}"


def parse_mailbox_url(url: str) -> MailboxUrl:
    parts = urlsplit(url)
    if parts.scheme not in ("imap", "imaps") or not parts.hostname or not parts.username:
        raise ValueError("GATEWAY_IMAP_URL must look like imap://user:password@host:port/INBOX")
    return MailboxUrl(
        host=parts.hostname,
        port=parts.port or (993 if parts.scheme == "imaps" else 143),
        username=unquote(parts.username),
        password=unquote(parts.password or ""),
        folder=unquote(parts.path.lstrip("/")) or "INBOX",
        tls=tls_mode(url),
    )


class Poller:
    """One poller per mailbox. `run` loops until `stop` is set; it never dies on one message."""

    def __init__(
        self,
        rt: Runtime,
        url: str,
        stop: threading.Event,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.rt = rt
        self.mailbox = parse_mailbox_url(url)
        self.stop = stop
        self.ssl_context = ssl_context or ssl.create_default_context(
            cafile=rt.settings.imap_ca_file or None
        )
        self.settings = rt.settings
        self.capabilities: frozenset[bytes] = frozenset()  # the connected server's, after login
        self.processed = 0  # mails handed to receive and marked, since start
        self.passes = 0  # looks at the mailbox that went through to the end, since start
        self.failures = 0  # connections lost or refused, since start

    def run(self) -> None:
        delay = 1.0
        while not self.stop.is_set():
            try:
                with self._connect() as client:
                    delay = 1.0
                    self._serve(client)
            except (OSError, IMAPClientError, StorageError) as exc:
                self.failures += 1
                log.warning("IMAP %s: %s; reconnecting in %.0f s", self.mailbox.key, exc, delay)
            except Exception:  # the edge: log and reconnect, never die
                self.failures += 1
                log.exception("IMAP %s: unexpected failure; reconnecting", self.mailbox.key)
            if self.stop.wait(delay):
                break
            delay = min(delay * 2, 60.0)

    def _connect(self) -> IMAPClient:
        box = self.mailbox
        client = IMAPClient(
            box.host,
            port=box.port,
            ssl=box.tls == "implicit",
            ssl_context=self.ssl_context,
            timeout=60,
        )
        if box.tls == "starttls":
            if b"STARTTLS" not in client.capabilities():
                client.shutdown()
                raise IMAPClientError(
                    f"{box.host} does not offer STARTTLS (write ?tls=none to read it without TLS)"
                )
            client.starttls(self.ssl_context)
        client.login(box.username, box.password)
        # Asked once per connection (after login, where servers announce more), as imapclient
        # recommends; imapclient asks again only for capabilities() itself.
        self.capabilities = frozenset(client.capabilities())
        return client

    def _serve(self, client: IMAPClient) -> None:
        box, settings = self.mailbox, self.settings
        if settings.imap_mark == "move":
            wanted = {settings.imap_processed_folder, settings.imap_quarantine_folder}
            existing = {name for _, _, name in client.list_folders()}
            for folder in sorted(wanted - existing):
                client.create_folder(folder)
        selected = client.select_folder(box.folder)
        self._track_uidvalidity(int(selected[b"UIDVALIDITY"]))
        idle = settings.imap_use_idle and b"IDLE" in self.capabilities
        log.info("IMAP %s: watching (%s)", box.key, "IDLE" if idle else "polling")
        with ThreadPoolExecutor(RECEIVE_THREADS, thread_name_prefix="imap-receive") as pool:
            while not self.stop.is_set():
                self.poll_once(client, pool)
                if idle:
                    self._idle(client)
                elif self.stop.wait(settings.imap_poll_interval):
                    return

    def poll_once(self, client: IMAPClient, pool: ThreadPoolExecutor | None = None) -> int:
        """Fetch, receive and mark every waiting message. Returns how many were handled.

        Per batch: one UID FETCH of the bodies, the mails received (in `pool`'s threads if
        given), then one command per destination folder (or one STORE) for those committed.
        A batch with a storage failure marks what was committed and raises: the rest stays.
        """
        if self.settings.imap_mark == "move":
            uids = client.search(["NOT", "DELETED"])
        else:
            uids = client.search(["NOT", "DELETED", "NOT", "KEYWORD", PROCESSED_KEYWORD])
        handled = 0
        for start in range(0, len(uids), FETCH_BATCH):
            batch = uids[start : start + FETCH_BATCH]
            fetched = client.fetch(batch, ["BODY.PEEK[]"])
            bodies = [(uid, fetched.get(uid, {}).get(b"BODY[]")) for uid in batch]
            del fetched
            small = [b for b in bodies if pool is not None and len(b[1] or b"") < PARALLEL_BELOW]
            outcomes: list[tuple[int, str | StorageError | None]] = []
            if pool is not None and small:
                taken = pool.map(self._outcome_of, small)
                outcomes += zip([uid for uid, _ in small], taken, strict=True)
            parallel = {uid for uid, _ in small}
            alone = [b for b in bodies if b[0] not in parallel]
            del bodies, small
            outcomes += [(uid, self._outcome(uid, data)) for uid, data in alone]
            del alone
            done: dict[str, list[int]] = {"processed": [], "quarantine": []}
            failure: StorageError | None = None
            for uid, outcome in outcomes:
                if isinstance(outcome, StorageError):
                    failure = failure or outcome
                elif outcome:
                    done[outcome].append(uid)
            self._mark(client, done["processed"], self.settings.imap_processed_folder)
            self._mark(client, done["quarantine"], self.settings.imap_quarantine_folder)
            handled += len(done["processed"]) + len(done["quarantine"])
            self.processed += len(done["processed"]) + len(done["quarantine"])
            if failure is not None:
                raise failure  # leave the rest in the mailbox; reconnect and try again later
            self._record_last_uid(max(batch))
        self.passes += 1
        return handled

    def _outcome_of(self, item: tuple[int, bytes | None]) -> str | StorageError | None:
        return self._outcome(*item)

    def _outcome(self, uid: int, data: bytes | None) -> str | StorageError | None:
        try:
            return self._receive(uid, data)
        except StorageError as exc:
            return exc

    def _receive(self, uid: int, data: bytes | None) -> str | None:
        if data is None:
            return None  # expunged meanwhile
        try:
            receipt = receive(RawMail(data=bytes(data), source="imap"), self.rt)
        except StorageError:
            raise  # leave it in the mailbox; reconnect and try again later
        except TemporaryAuthenticationFailure as exc:
            metrics.received("imap", "deferred")
            log.warning("IMAP %s: uid %s left for the next pass: %s", self.mailbox.key, uid, exc)
            return None
        except Exception:
            log.exception(
                "IMAP %s: uid %s could not be received; moved aside", self.mailbox.key, uid
            )
            return "quarantine"
        return "quarantine" if receipt.outcome == "quarantined" else "processed"

    def _mark(self, client: IMAPClient, uids: list[int], folder: str) -> None:
        """After the commit: move (RFC 6851) or copy-and-expunge, or set the keyword."""
        if not uids:
            return
        if self.settings.imap_mark != "move":
            client.add_flags(uids, [PROCESSED_KEYWORD])
        elif b"MOVE" in self.capabilities:
            client.move(uids, folder)
        else:
            client.copy(uids, folder)
            client.delete_messages(uids)
            if b"UIDPLUS" in self.capabilities:
                client.uid_expunge(uids)
            else:
                client.expunge()

    def _idle(self, client: IMAPClient) -> None:
        """Wait in IDLE until the server reports a change, the stop flag, or the re-IDLE time."""
        # Mail that arrived since the last command is announced to NOOP, but not to a new IDLE
        # (Dovecot tells an idling client only at its next periodic check); mail that arrived
        # while the pass's own commands ran was announced to them.
        if _announced_meanwhile(client) or _announces_mail(client.noop()[1]):
            return
        client.idle()
        try:
            until = time.monotonic() + self.settings.imap_idle_timeout
            while not self.stop.is_set() and time.monotonic() < until:
                responses = client.idle_check(timeout=1.0)
                if _announces_mail(responses):
                    return
                if not responses and _closed_by_server(client.socket()):
                    raise OSError("the server closed the connection")
        finally:
            client.idle_done()

    # ImapState on Core statements, like the rest of the mail path (gateway/storage/tables.py):
    # the ORM's first query configures every mapper of the schema, most of a second that the
    # poller spent before it watched its mailbox.
    def _record_last_uid(self, uid: int) -> None:
        # bookkeeping (db.transaction): lost, it only has the next pass look again
        with transaction(self.rt.sessions, durable=False) as conn:
            conn.execute(
                sa.update(IMAP_STATES)
                .where(IMAP_STATES.c.mailbox == self.mailbox.key, IMAP_STATES.c.last_uid < uid)
                .values(last_uid=uid, updated_at=self.rt.now())
            )

    def _track_uidvalidity(self, uidvalidity: int) -> None:
        key = self.mailbox.key
        with transaction(self.rt.sessions) as conn:
            known = conn.execute(
                sa.select(IMAP_STATES.c.uidvalidity).where(IMAP_STATES.c.mailbox == key)
            ).scalar_one_or_none()
            if known is None:
                conn.execute(
                    sa.insert(IMAP_STATES).values(
                        mailbox=key, uidvalidity=uidvalidity, last_uid=0, updated_at=self.rt.now()
                    )
                )
            elif known != uidvalidity:
                # UIDs of the old validity mean nothing now; every waiting message is read
                # again, and deduplication keeps what was already stored from being stored twice.
                log.warning("IMAP %s: UIDVALIDITY changed %s -> %s", key, known, uidvalidity)
                conn.execute(
                    sa.update(IMAP_STATES)
                    .where(IMAP_STATES.c.mailbox == key)
                    .values(uidvalidity=uidvalidity, last_uid=0, updated_at=self.rt.now())
                )


def _closed_by_server(sock: socket.socket) -> bool:
    """Whether the server has closed the connection: readable, and at the end of the stream.

    imapclient's `idle_check` treats an end of stream as "no responses", so a server that went
    away would only be noticed when IDLE is renewed. The raw socket is peeked at (also under
    TLS, where the encrypted bytes are looked at and none are taken).
    """
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        return socket.socket.recv(sock, 1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def _announced_meanwhile(client: IMAPClient) -> bool:
    """Whether the server announced new mail along with the reply to an earlier command.

    Dovecot reports a mail that arrives during a command (the pass's SEARCH, say) as an
    untagged EXISTS before that command's completion; imaplib keeps such responses in
    `untagged_responses` and imapclient reads only those the command asked for, so the mail
    would wait for the next IDLE renewal. imapclient offers no call for them: the dict is read
    (and emptied of the announcements) here.
    """
    pending = client._imap.untagged_responses
    return bool(pending.pop("EXISTS", None)) | bool(pending.pop("RECENT", None))


def _announces_mail(responses: Iterable[tuple[object, ...]]) -> bool:
    return any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses)
