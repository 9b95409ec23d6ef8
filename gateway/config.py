"""Settings: a TOML file (GATEWAY_CONFIG, default ./gateway.toml) under GATEWAY_* variables."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CommaList = Annotated[tuple[str, ...], NoDecode]


class Settings(BaseSettings):
    """Every knob of the gateway; the README's configuration reference lists them."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="forbid", frozen=True)

    var_dir: Path = Path("var")
    database_url: str = ""  # default: sqlite:///<var_dir>/gateway.db
    broker_url: str = ""  # unset: in-process; amqp://… RabbitMQ; redis://… Redis
    # Inbound
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    intake_addresses: CommaList = ("soc@securecall.example",)
    max_message_size: int = 25 * 1024 * 1024
    smtp_workers: int = 8
    imap_url: str = ""  # imap://user:password@host:port/INBOX or imaps://…; unset: no poller
    imap_processed_folder: str = "Processed"
    imap_quarantine_folder: str = "Quarantine"
    imap_mark: str = "move"  # move: to the Processed folder; flag: keyword $SecureCallProcessed
    imap_poll_interval: float = 30.0
    # IDLE is ended and the mailbox polled this often (RFC 2177 asks for less than 29 minutes).
    # Short, because a mail that lands between the poll and the new IDLE is only announced at
    # the server's own next check (Dovecot: every 30 s by default).
    imap_idle_timeout: float = 60.0
    imap_use_idle: bool = True  # False: poll every imap_poll_interval even where IDLE is offered
    imap_ca_file: str = ""  # CA certificates to trust for the IMAP server (a private CA)
    # Outbound
    outbound_url: str = ""  # smtp://host:port, smtps://…, maildir:PATH; unset: maildir under var/
    gateway_address: str = "soc@securecall.example"
    gateway_name: str = "SecureCall SOC"
    soc_queue_address: str = "soc-queue@securecall.example"  # notifications and alerts
    soc_copy_files_limit: int = 10 * 1024 * 1024  # bytes of a customer's files sent with its copy
    note_address: str = "notes@securecall.example"  # SOC staff: an internal note on an SR
    escalation_address: str = "escalation@securecall.example"  # customers: ask to escalate
    duty_management_address: str = "duty-management@securecall.example"
    director_address: str = "soc-directors@securecall.example"
    soc_phone: str = "+44 20 7946 0000"
    secret_key: str = ""  # HMAC key for outgoing Message-IDs; unset: generated under var/
    # Workers and sweep
    worker_threads: int = 4
    send_attempts: int = 12  # a Delivery that failed this often with 4xx is given up (failed)
    send_backoff: float = 5.0  # seconds before the first retry; doubles each time, up to an hour
    sweep_interval: float = 5.0
    requeue_after: float = 60.0  # a pending Delivery not sent after this is enqueued again
    stale_sending_after: float = 300.0  # a Delivery "sending" longer than this was lost by a worker
    # Service levels and the clock
    warn_at_fraction: float = 0.8  # warn the SOC when this share of a target's time has passed
    update_hours_p1: float = 1.0  # §3.5.4: alert when an open SR had no SOC update for this long
    update_hours_p2: float = 4.0
    update_hours_p3: float = 24.0
    update_hours_p4: float = 72.0
    soc_timezone: str = "Europe/London"  # §3.10: the SOC is in the UK; daily mails follow its day
    review_time: str = "07:00"  # the team leaders' daily progress review
    tam_digest_time: str = "08:00"  # the TAMs' daily digest of new P3/P4 SRs
    clock_interval: float = 5.0  # seconds between two looks at the due Deadlines
    # Loops and floods (R6.1)
    autoreply_per_hour: int = 5  # automatic replies to one address per hour …
    autoreply_per_day: int = 20  # … and per day
    autoreply_per_sr_hour: int = 10  # automatic replies about one SR per hour
    smtp_sender_rate: int = 60  # mails accepted per envelope sender per minute (then 451)
    # Sender authentication (R6.4)
    auth_policy: str = "dkim_or_spf"  # contacts' domains without a policy of their own
    soc_auth_policy: str = "dmarc"  # SOC staff: their answers and commands must be genuine
    dns_servers: CommaList = ()  # unset: the system's resolver
    dns_timeout: float = 5.0  # seconds for all DNS lookups of one mail; then 451 (R6.6)
    trusted_authserv_ids: CommaList = ()  # Authentication-Results to believe (IMAP, relays)
    trusted_relays: CommaList = ()  # IPs whose SMTP connections carry an upstream's verdict
    trusted_arc_sealers: CommaList = ()  # ARC sealers (d=) whose verdict stands for forwarded mail
    # Policies
    notice_interval_hours: float = 24.0  # at most one notice per unregistered sender per interval
    default_timezone: str = "Europe/Berlin"
    default_country: str = "DE"

    @field_validator("auth_policy", "soc_auth_policy")
    @classmethod
    def _policy(cls, value: str) -> str:
        if value not in ("dmarc", "dkim_or_spf", "none"):
            raise ValueError("must be dmarc, dkim_or_spf or none")
        return value

    @field_validator(
        "intake_addresses",
        "dns_servers",
        "trusted_authserv_ids",
        "trusted_relays",
        "trusted_arc_sealers",
        mode="before",
    )
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(a.strip().lower() for a in value.split(",") if a.strip())
        if isinstance(value, list | tuple):
            return tuple(str(a).strip().lower() for a in value)
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = Path(os.environ.get("GATEWAY_CONFIG", "gateway.toml"))
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file))

    # --- derived values -------------------------------------------------------------------

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.var_dir / 'gateway.db'}"

    @property
    def outbound(self) -> str:
        return self.outbound_url or f"maildir:{self.var_dir / 'outbound'}"

    @property
    def accepted_addresses(self) -> frozenset[str]:
        """What RCPT TO accepts: the intake addresses, the note and escalation addresses."""
        extra = (self.note_address, self.escalation_address)
        return frozenset(a.lower() for a in (*self.intake_addresses, *extra) if a)

    def update_interval(self, priority: int) -> float:
        """§3.5.4: hours an open SR of this priority may go without a SOC update."""
        return float(getattr(self, f"update_hours_p{priority}"))

    @property
    def domain(self) -> str:
        return self.gateway_address.rpartition("@")[2] or "localhost"

    @property
    def hmac_keys(self) -> dict[str, bytes]:
        """Key id -> key. The first is used to sign; all verify (rotation: prepend a new one)."""
        raw = self.secret_key or _generated_secret(self.var_dir)
        keys = [k.strip() for k in raw.split(",") if k.strip()]
        return {f"k{len(keys) - i}": key.encode() for i, key in enumerate(keys)}

    def redacted(self) -> dict[str, Any]:
        """The settings for display, passwords and keys blanked."""
        shown = self.model_dump(mode="json")
        for name in ("database_url", "broker_url", "imap_url", "outbound_url"):
            shown[name] = _without_password(shown[name])
        shown["secret_key"] = "***" if self.secret_key else "(generated under var_dir)"
        return shown


def _generated_secret(var_dir: Path) -> str:
    path = var_dir / "secret.key"
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        draft = var_dir / f".secret.key.{os.getpid()}"
        draft.write_text(secrets.token_hex(32))
        draft.chmod(0o600)
        try:
            os.link(draft, path)  # atomic: two processes starting together agree on one key
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if not parts.password:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)
