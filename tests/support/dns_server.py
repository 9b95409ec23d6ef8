"""A real authoritative DNS server on loopback (dnslib), for the records tests publish.

The gateway is pointed at it with GATEWAY_DNS_SERVERS: SPF, DKIM keys and DMARC records of test
domains are answered over the DNS protocol, as in production. A server can also stop answering,
altogether (`silent`) or for some names (`drop`), as an unreachable resolver or a dead
authoritative server does: its socket stays bound and the query is never answered.
"""

from __future__ import annotations

import base64
import threading
from collections import Counter, defaultdict

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from dnslib import QTYPE, RR, TXT, DNSError, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from tests.support.services import free_port


class _Zone(BaseResolver):
    def __init__(self) -> None:
        self.records: dict[tuple[str, str], list[RR]] = defaultdict(list)
        self.lock = threading.Lock()
        self.silent = False  # no query is answered
        self.dropped: set[str] = set()  # names whose queries are not answered
        self.asked: Counter[str] = Counter()  # every query's name, answered or not

    def resolve(self, request: DNSRecord, handler: object) -> DNSRecord:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        with self.lock:
            self.asked[name] += 1
            if self.silent or name in self.dropped:
                raise DNSError("not answered")  # dnslib sends nothing back
            answers = list(self.records.get((name, qtype), []))
            known = any(key[0] == name for key in self.records)
        for answer in answers:
            reply.add_answer(answer)
        if not answers and not known:
            reply.header.rcode = 3  # NXDOMAIN
        return reply


class DnsServer:
    """`txt(name, value)`, `a(name, ip)` publish records; `address` is for GATEWAY_DNS_SERVERS."""

    def __init__(self) -> None:
        self.port = free_port()
        self.zone = _Zone()
        quiet = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
        self.udp = DNSServer(self.zone, port=self.port, address="127.0.0.1", logger=quiet)
        self.tcp = DNSServer(self.zone, port=self.port, address="127.0.0.1", tcp=True, logger=quiet)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> DnsServer:
        self.udp.start_thread()
        self.tcp.start_thread()
        return self

    def stop(self) -> None:
        self.udp.stop()
        self.tcp.stop()
        self.udp.server.server_close()
        self.tcp.server.server_close()

    @property
    def silent(self) -> bool:
        return self.zone.silent

    @silent.setter
    def silent(self, value: bool) -> None:
        with self.zone.lock:
            self.zone.silent = value

    def drop(self, name: str) -> None:
        """Queries for `name` go unanswered from now on."""
        with self.zone.lock:
            self.zone.dropped.add(name.lower())

    def asked(self, name: str | None = None) -> int:
        """How many queries for `name` (or for any name) arrived, answered or not."""
        with self.zone.lock:
            return self.zone.asked[name.lower()] if name else self.zone.asked.total()

    def txt(self, name: str, value: str) -> None:
        chunks = [value[i : i + 255] for i in range(0, len(value), 255)]  # RFC 7208 §3.3
        record = RR(name, QTYPE.TXT, rdata=TXT(chunks), ttl=1)
        with self.zone.lock:
            self.zone.records[(name.lower(), "TXT")].append(record)


class DkimKey:
    """An RSA key for a domain's selector; `publish` puts its public part in DNS."""

    def __init__(self, domain: str, selector: str = "mail") -> None:
        self.domain, self.selector = domain, selector
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.pem = self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )

    def publish(self, dns: DnsServer) -> None:
        der = self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        dns.txt(
            f"{self.selector}._domainkey.{self.domain}",
            f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}",
        )

    def sign(self, message: bytes) -> bytes:
        """The message with a DKIM-Signature header in front (RFC 6376)."""
        import dkim

        signature = dkim.sign(
            message,
            self.selector.encode(),
            self.domain.encode(),
            self.pem,
            include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
        )
        return signature + message

    def seal(self, message: bytes, authserv_id: str) -> bytes:
        """The message with the ARC set (RFC 8617) a forwarder of this domain adds to it.

        `message` carries the forwarder's own Authentication-Results (by `authserv_id`): they
        become its ARC-Authentication-Results.
        """
        import dkim

        arc_set = dkim.arc_sign(
            message, self.selector.encode(), self.domain.encode(), self.pem, authserv_id.encode()
        )
        assert arc_set, "no Authentication-Results of the sealer in the message"
        return b"".join(arc_set) + message
