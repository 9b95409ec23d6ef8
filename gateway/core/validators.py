"""The checks behind the settings and the command line's arguments: each returns the value it was
given (normalised) or raises ValueError with a message that says what is wrong with it."""

from __future__ import annotations

import ipaddress
import re
import ssl
from functools import cache
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_TIME = re.compile(r"(\d{1,2}):(\d{2})")
_ADDRESS = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+")


def time_zone(value: str) -> str:
    """An IANA time zone the zoneinfo database knows, e.g. Europe/Berlin."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a directory, e.g. "Europe"
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


def time_of_day(value: str) -> str:
    """HH:MM between 00:00 and 23:59 (7:00 is read as 07:00)."""
    found = _TIME.fullmatch(value.strip())
    if found is None or int(found[1]) > 23 or int(found[2]) > 59:
        raise ValueError(f"not a time of day HH:MM from 00:00 to 23:59: {value!r}")
    return f"{int(found[1]):02d}:{found[2]}"


def country(value: str) -> str:
    """An ISO 3166-1 two-letter code whose public holidays are known (§1.3: Business Hours)."""
    code = value.strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", code):
        raise ValueError(f"not a two-letter country code: {value!r}")
    if code not in _countries():
        raise ValueError(f"no public holidays known for country {code!r}")
    return code


@cache
def _countries() -> frozenset[str]:
    # Imported here: a country given in the settings is checked, a default is not, and the
    # registry (with dateutil) was a tenth of the start-up of a command that reads no calendar.
    from holidays.registry import EntityLoader

    # The codes of holidays' registry, aliases included: the same as the keys of
    # holidays.list_supported_countries(), which imports all 250 countries' modules to list
    # their subdivisions (a sixth of a second, in every command that reads the settings).
    return frozenset(EntityLoader.get_country_codes())


def mail_address(value: str) -> str:
    """A bare address, local@domain.tld (no display name, no angle brackets)."""
    if not _ADDRESS.fullmatch(value):
        raise ValueError(f"not a mail address: {value!r}")
    return value


def optional_mail_address(value: str) -> str:
    """Empty (a derived default), or a bare address."""
    return mail_address(value) if value else value


def public_url(value: str) -> str:
    """An http:// or https:// URL with a host, the base of links in mails; no trailing slash."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http:// or https:// URL with a host: {value!r}")
    if parts.query or parts.fragment or re.search(r"[\s\x00-\x1f\x7f<>\"]", value):
        raise ValueError(f"a base URL has no query, fragment, spaces or quotes: {value!r}")
    return value.rstrip("/")


def ip_address(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"not an IP address: {value!r}") from None
    return value


def name_server(value: str) -> str:
    """`192.0.2.1`, `192.0.2.1:5353`, `2001:db8::1` or `[2001:db8::1]:5353`."""
    host, port = value, ""
    if value.startswith("["):
        host, _, port = value[1:].partition("]:")
        host = host.rstrip("]")
    elif value.count(":") == 1:
        host, port = value.split(":")
    ip_address(host)
    if port and not (port.isdigit() and 1 <= int(port) <= 65535):
        raise ValueError(f"not a port (1-65535): {port!r}")
    return value


def existing_file(value: str) -> str:
    """Empty, or a file that is there."""
    if value and not Path(value).is_file():
        raise ValueError(f"no such file: {value!r}")
    return value


def certificate_pair(cert: str, key: str) -> str:
    """Both unset, or a certificate chain and its private key (PEM) that TLS can use."""
    if bool(cert) != bool(key):
        raise ValueError("STARTTLS needs both SMTP_TLS_CERT and SMTP_TLS_KEY")
    if cert:
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
        except (ssl.SSLError, OSError) as exc:
            raise ValueError(f"cannot use {cert} with {key}: {exc}") from None
    return key


_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_SELECTOR = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


def selector(value: str) -> str:
    """A DKIM selector (RFC 6376 §3.1): labels of a domain name, e.g. `gw2026`."""
    if not _SELECTOR.fullmatch(value.lower()):
        raise ValueError(f"not a DKIM selector (letters, digits, hyphens, dots): {value!r}")
    return value.lower()


# R6.7: what a URL may say about TLS. Without a word TLS is required (imap://, smtp:// do
# STARTTLS, verified); only `tls=none` turns it off, and it has to be written out.
TLS_QUERIES: dict[str, dict[str, tuple[str, ...]]] = {
    "imap": {"tls": ("none",), "starttls": ("require",)},
    "imaps": {},
    "smtp": {"tls": ("none",), "starttls": ("1", "true", "yes", "require")},
    "smtps": {},
}


def tls_mode(url: str) -> str:
    """`implicit` (imaps, smtps), `starttls` (the default of imap://, smtp://) or `none`."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    allowed = TLS_QUERIES.get(scheme, {})
    mode = "implicit" if scheme.endswith("s") else "starttls"
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if value.lower() not in allowed.get(name, ()):
            words = " or ".join(f"?{n}={v[0]}" for n, v in allowed.items()) or "nothing"
            raise ValueError(f"{scheme}:// does not take ?{name}={value}: use {words}")
        if name == "tls":
            mode = "none"
    return mode


# Schemes of each URL setting, and whether it must name a host. A URL's password is never quoted
# in a message: only its scheme, host and port are.
URL_SCHEMES: dict[str, tuple[tuple[str, ...], bool]] = {
    "database_url": (
        ("sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg", "postgres"),
        False,
    ),
    "broker_url": (("amqp", "amqps", "redis", "rediss", "unix"), False),
    "outbound_url": (("smtp", "smtps", "maildir"), True),
    "imap_url": (("imap", "imaps"), True),
}


def url(value: str, setting: str) -> str:
    """Empty (the setting's default), or a URL with one of the setting's schemes."""
    if not value:
        return value
    schemes, needs_host = URL_SCHEMES[setting]
    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        what = f"unknown scheme {scheme!r}" if scheme else "no scheme"
        raise ValueError(f"{what}: use {', '.join(schemes)}")
    if scheme == "maildir":
        if not parts.path:
            raise ValueError("maildir: needs a path, e.g. maildir:/var/spool/gateway")
        return value
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"the port of {scheme}://{parts.hostname} is not 1-65535") from None
    if port == 0:
        raise ValueError(f"the port of {scheme}://{parts.hostname} is not 1-65535")
    if needs_host and not parts.hostname:
        raise ValueError(f"{scheme}:// needs a host")
    if scheme.startswith("imap") and not parts.username:
        raise ValueError("imap:// needs a user: imap://user:password@host:port/INBOX")
    if scheme in TLS_QUERIES:
        tls_mode(value)
    return value


def without_password(value: str) -> str:
    """The URL with its password as ***, for showing."""
    try:
        password = urlsplit(value).password
    except ValueError:
        return value
    if not password:
        return value
    return value.replace(f":{password}@", ":***@", 1)
