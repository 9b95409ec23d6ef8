"""Step 10, R6.7: the DKIM signature of every mail the gateway sends (RFC 6376; Ed25519: RFC
8463), and the keys for it (`gateway dkim generate`).

Signed with the gateway's own domain, so that its mail passes DMARC (RFC 7489) wherever it goes,
whatever the relay does; a relay that signs too adds a signature of its own beside this one.
"""

from __future__ import annotations

import base64
import os
import re
from dataclasses import dataclass
from pathlib import Path

import dkim
import nacl.encoding
import nacl.signing
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.core.settings import Settings

ALGORITHMS = {"ed25519": b"ed25519-sha256", "rsa": b"rsa-sha256"}
RSA_BITS = 2048  # RFC 8301 §3.2: at least 1024, 2048 recommended
# What a signature covers: what a reader sees and threads by (RFC 6376 §5.4.1), and the fields
# that tell MIME and auto-responders how to read the mail. A field named here that the mail
# lacks is signed as absent (§5.4), so no one can add an In-Reply-To on the way.
SIGNED = (
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "mime-version",
    "content-type",
    "auto-submitted",
)
# Bulletins' list fields, signed when the mail has them (RFC 8058 §4 requires List-Unsubscribe
# and List-Unsubscribe-Post to be covered by a DKIM signature).
SIGNED_WHEN_PRESENT = ("list-id", "list-unsubscribe", "list-unsubscribe-post")


class SigningKeyError(ValueError):
    """The DKIM key file cannot be read or is no key."""


@dataclass(frozen=True)
class Signer:
    """One domain's selector and private key (an Ed25519 seed in base64, or an RSA PEM)."""

    domain: str
    selector: str
    algorithm: str  # ed25519 | rsa
    key: bytes

    @classmethod
    def from_settings(cls, settings: Settings) -> Signer | None:
        """The signer of GATEWAY_DKIM_KEY_FILE and _SELECTOR; None when they are unset."""
        if not settings.dkim_key_file:
            return None
        algorithm, key = read_key(Path(settings.dkim_key_file))
        return cls(settings.signing_domain, settings.dkim_selector, algorithm, key)

    def sign(self, data: bytes) -> bytes:
        """The message with its DKIM-Signature field in front."""
        names = _field_names(data)
        fields = [*SIGNED, *(n for n in SIGNED_WHEN_PRESENT if n in names)]
        signature = dkim.sign(
            data,
            self.selector.encode(),
            self.domain.encode(),
            self.key,
            signature_algorithm=ALGORITHMS[self.algorithm],
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=[f.encode() for f in fields],
        )
        return bytes(signature) + data


def _field_names(data: bytes) -> set[str]:
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    return {m.group(1).lower().decode() for m in re.finditer(rb"^([!-9;-~]+):", head, re.M)}


def read_key(path: Path) -> tuple[str, bytes]:
    """(algorithm, key) of a key file as `generate` writes it (dkimpy's dknewkey alike)."""
    try:
        text = path.read_bytes().strip()
    except OSError as exc:
        raise SigningKeyError(f"cannot read the DKIM key {path}: {exc.strerror}") from None
    if text.startswith(b"-----BEGIN RSA PRIVATE KEY-----"):
        return "rsa", text + b"\n"
    if text.startswith(b"-----BEGIN"):
        try:
            loaded = serialization.load_pem_private_key(text, password=None)
        except ValueError as exc:
            raise SigningKeyError(f"{path} holds no usable private key: {exc}") from None
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise SigningKeyError(f"{path}: only RSA keys are read as PEM")
        return "rsa", _rsa_pem(loaded)
    try:
        nacl.signing.SigningKey(text, encoder=nacl.encoding.Base64Encoder)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"{path} is no Ed25519 seed nor RSA PEM: {exc}") from None
    return "ed25519", text


@dataclass(frozen=True)
class NewKey:
    algorithm: str
    private: bytes  # what the key file holds
    public: str  # the p= of the DNS record

    def record(self) -> str:
        """The TXT record to publish at <selector>._domainkey.<domain> (RFC 6376 §3.6.1)."""
        return f"v=DKIM1; k={self.algorithm}; p={self.public}"


def generate(algorithm: str) -> NewKey:
    if algorithm == "ed25519":
        seed = nacl.signing.SigningKey.generate()
        public = base64.b64encode(bytes(seed.verify_key)).decode()
        return NewKey(algorithm, seed.encode(nacl.encoding.Base64Encoder) + b"\n", public)
    if algorithm == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
        der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return NewKey(algorithm, _rsa_pem(key), base64.b64encode(der).decode())
    raise ValueError(f"no DKIM algorithm {algorithm!r}: use {', '.join(ALGORITHMS)}")


def write_key(path: Path, key: NewKey) -> None:
    """The private key, readable by its owner only (0600), never over an existing file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key.private)


def zone_line(selector: str, domain: str, record: str) -> str:
    """The record in zone-file form, in strings of at most 255 bytes (RFC 1035 §3.3.14)."""
    chunks = " ".join(f'"{record[i : i + 255]}"' for i in range(0, len(record), 255))
    return f"{selector}._domainkey.{domain}. IN TXT {chunks}"


def _rsa_pem(key: rsa.RSAPrivateKey) -> bytes:
    # dkimpy reads RSAPrivateKey (PKCS #1) PEM
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
