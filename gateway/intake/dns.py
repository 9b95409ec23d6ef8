"""The gateway's DNS resolver, for SPF, DKIM, DMARC and ARC (R6.4), bounded per mail (R6.6).

By default it reads the system's configuration; GATEWAY_DNS_SERVERS points it at given name
servers (`ip` or `ip:port`, comma-separated), which is how tests publish keys and records for
their own domains. The DNS work of one mail runs under one deadline (`Resolver.lookups`,
GATEWAY_DNS_TIMEOUT in all): an unreachable resolver costs that long, then the checks come back
`temperror`. pyspf reads DNS through its module-level `DNSLookup`, the one hook it offers;
`Resolver.install` points that at this resolver, and pyspf's own `querytime` bounds its share.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import dns.exception

if TYPE_CHECKING:
    import dns.resolver

LOOKUP_TIMEOUT = 5.0


class DnsTrouble(Exception):
    """No answer within the mail's time: the result of the check is `temperror`."""


def _unanswered() -> tuple[type[Exception], ...]:
    """What a resolver that does not answer (or answers SERVFAIL) raises: a temporary failure."""
    import dns.resolver

    return (dns.exception.Timeout, dns.resolver.NoNameservers)


class Resolver:
    """dnspython's resolver, made at the first lookup: a command that checks no sender (a
    listing, `config`) does not pay for importing it and reading the system's configuration."""

    def __init__(self, servers: Sequence[str] = ()) -> None:
        self.servers = tuple(servers)
        self._resolver: dns.resolver.Resolver | None = None
        self._making = threading.Lock()
        self._for_spf = False  # `install` asked for; done with the first lookups

    @property
    def resolver(self) -> dns.resolver.Resolver:
        with self._making:
            if self._resolver is None:
                self._resolver = _make(self.servers)
                if self._for_spf:
                    self._point_spf()
            return self._resolver

    def lookups(self, budget: float) -> Lookups:
        """The lookups of one mail, all of them within `budget` seconds from now."""
        return Lookups(self.resolver, budget)

    def spf_lookup(
        self, name: str, qtype: str, strict: bool = True, timeout: float = LOOKUP_TIMEOUT
    ) -> list[tuple[tuple[str, str], Any]]:
        """pyspf's `DNSLookup` interface; `timeout` is what is left of pyspf's `querytime`."""
        try:
            answer = self.resolver.resolve(
                name, qtype, raise_on_no_answer=False, lifetime=max(timeout, 0.01)
            )
        except _unanswered() as exc:
            import spf

            raise spf.TempError(f"DNS {exc}") from exc
        except dns.exception.DNSException:  # NXDOMAIN, no answer, or a name that cannot exist
            return []
        return [found for rdata in answer if (found := _spf_record(name, qtype, rdata))]

    def install(self) -> None:
        """Make pyspf resolve through this resolver, from its first lookup on (every SPF check
        runs within a mail's `lookups`)."""
        with self._making:
            self._for_spf = True
            if self._resolver is not None:
                self._point_spf()

    def _point_spf(self) -> None:
        import spf

        spf.DNSLookup = self.spf_lookup


class Lookups:
    """One mail's DNS work under one deadline; it counts the lookups that went unanswered."""

    def __init__(self, resolver: dns.resolver.Resolver, budget: float) -> None:
        self.resolver = resolver
        self.budget = budget
        self.deadline = time.monotonic() + budget
        self.unanswered = 0

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def txt(self, name: str) -> list[str]:
        """The TXT records of `name`, each one's strings joined; [] when there are none."""
        left = self.remaining()
        if not left:
            self.unanswered += 1
            raise DnsTrouble(f"{name}: no time left for this mail's lookups")
        try:
            answer = self.resolver.resolve(name, "TXT", raise_on_no_answer=False, lifetime=left)
        except _unanswered() as exc:
            self.unanswered += 1
            raise DnsTrouble(f"{name}: {exc}") from exc
        except dns.exception.DNSException:  # NXDOMAIN, no TXT, or a name that cannot exist
            return []
        return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]

    def dkim_txt(self, name: bytes, timeout: float = LOOKUP_TIMEOUT) -> bytes | None:
        """dkimpy's `dnsfunc` (DKIM and ARC keys): the key record of a selector, or None.

        dkimpy turns a DnsTimeoutError into a plain "did not verify"; `unanswered` tells the two
        apart for the caller.
        """
        try:
            records = self.txt(name.decode("ascii").rstrip("."))
        except DnsTrouble as exc:
            import dkim  # loaded by the DKIM and ARC checks that call this

            raise dkim.DnsTimeoutError(str(exc)) from None
        return records[0].encode() if records else None


def _make(servers: Sequence[str]) -> dns.resolver.Resolver:
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=not servers)
    if servers:
        hosts = []
        for server in servers:
            host, port = _host_and_port(server)
            hosts.append(host)
            if port:
                resolver.nameserver_ports[host] = port
        resolver.nameservers = hosts
    resolver.lifetime = LOOKUP_TIMEOUT
    resolver.cache = dns.resolver.LRUCache(10_000)
    return resolver


def _spf_record(name: str, qtype: str, rdata: Any) -> tuple[tuple[str, str], Any] | None:
    """One answer as pyspf's DNSLookup gives it: ((name, type), value)."""
    value: Any
    if qtype in ("A", "AAAA"):
        value = rdata.address
    elif qtype == "MX":
        value = (rdata.preference, rdata.exchange)
    elif qtype in ("PTR", "CNAME"):
        value = rdata.target.to_text(True)
    elif qtype in ("TXT", "SPF"):
        value = rdata.strings
    else:
        return None
    return (name, qtype), value


def _host_and_port(server: str) -> tuple[str, int | None]:
    """`192.0.2.1`, `192.0.2.1:5353`, `2001:db8::1` or `[2001:db8::1]:5353`."""
    server = server.strip()
    if server.startswith("["):
        host, _, port = server[1:].partition("]:")
        return host.rstrip("]"), int(port) if port else None
    if server.count(":") == 1:
        host, port = server.split(":")
        return host, int(port)
    return server, None
