"""The gateway's DNS resolver, for SPF, DKIM and DMARC (R6.4).

By default it reads the system's configuration; GATEWAY_DNS_SERVERS points it at given name
servers (`ip` or `ip:port`, comma-separated), which is how tests publish keys and records for
their own domains. pyspf reads DNS through its module-level `DNSLookup`, the one hook it offers;
`Resolver.install` points that at this resolver.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dkim
import dns.exception
import dns.rdatatype
import dns.resolver
import spf

LOOKUP_TIMEOUT = 5.0


class Resolver:
    def __init__(self, servers: Sequence[str] = ()) -> None:
        self.resolver = dns.resolver.Resolver(configure=not servers)
        if servers:
            hosts = []
            for server in servers:
                host, port = _host_and_port(server)
                hosts.append(host)
                if port:
                    self.resolver.nameserver_ports[host] = port
            self.resolver.nameservers = hosts
        self.resolver.lifetime = LOOKUP_TIMEOUT
        self.resolver.cache = dns.resolver.LRUCache(10_000)

    def txt(self, name: str) -> list[str]:
        """The TXT records of `name`, each one's strings joined; [] when there are none."""
        try:
            answer = self.resolver.resolve(name, "TXT", raise_on_no_answer=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]

    def dkim_txt(self, name: bytes, timeout: float = LOOKUP_TIMEOUT) -> bytes | None:
        """dkimpy's `dnsfunc`: the key record of a selector, or None."""
        try:
            records = self.txt(name.decode("ascii").rstrip("."))
        except (dns.exception.Timeout, dns.resolver.NoNameservers):
            raise dkim.DnsTimeoutError(f"DNS timeout for {name!r}") from None
        return records[0].encode() if records else None

    def spf_lookup(
        self, name: str, qtype: str, strict: bool = True, timeout: float = LOOKUP_TIMEOUT
    ) -> list[tuple[tuple[str, str], Any]]:
        """pyspf's `DNSLookup` interface, answered by this resolver."""
        try:
            answer = self.resolver.resolve(name, qtype, raise_on_no_answer=False, lifetime=timeout)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
            raise spf.TempError(f"DNS {exc}") from exc
        found: list[tuple[tuple[str, str], Any]] = []
        for rdata in answer:
            if qtype in ("A", "AAAA"):
                found.append(((name, qtype), rdata.address))
            elif qtype == "MX":
                found.append(((name, qtype), (rdata.preference, rdata.exchange)))
            elif qtype == "PTR":
                found.append(((name, qtype), rdata.target.to_text(True)))
            elif qtype in ("TXT", "SPF"):
                found.append(((name, qtype), rdata.strings))
            elif qtype == "CNAME":
                found.append(((name, qtype), rdata.target.to_text(True)))
        return found

    def install(self) -> None:
        """Make pyspf resolve through this resolver."""
        spf.DNSLookup = self.spf_lookup


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
