"""Settings: a TOML file (GATEWAY_CONFIG, default ./gateway.toml) under GATEWAY_* variables.

Every value is checked when the settings are loaded (`gateway/validators.py`); `load` turns what
is wrong into one line per setting, naming the variable and the file it came from.
"""

from __future__ import annotations

import difflib
import os
import secrets
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from gateway.core import validators

Address = Annotated[str, AfterValidator(validators.mail_address)]
OptionalAddress = Annotated[str, AfterValidator(lambda v: validators.mail_address(v) if v else v)]
CommaList = Annotated[tuple[str, ...], NoDecode]
Port = Annotated[int, Field(ge=1, le=65535)]
AtLeastOne = Annotated[int, Field(ge=1)]  # threads, attempts, bytes of a limit that must admit mail
NotNegative = Annotated[int, Field(ge=0)]  # 0: none at all
Positive = Annotated[float, Field(gt=0)]  # seconds and hours
TimeZone = Annotated[str, AfterValidator(validators.time_zone)]
TimeOfDay = Annotated[str, AfterValidator(validators.time_of_day)]
Country = Annotated[str, AfterValidator(validators.country)]
Policy = Literal["dmarc", "dkim_or_spf", "none"]  # R6.4; gateway/authentication.py POLICIES
Folder = Annotated[str, Field(min_length=1)]
File = Annotated[str, AfterValidator(validators.existing_file)]
SECRETS = ("secret_key",)


class Settings(BaseSettings):
    """Every knob of the gateway; the README's configuration reference lists them."""

    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_", extra="forbid", frozen=True, hide_input_in_errors=True
    )

    var_dir: Path = Path("var")
    database_url: str = ""  # default: sqlite:///<var_dir>/gateway.db
    broker_url: str = ""  # unset: in-process; amqp://… RabbitMQ; redis://… Redis
    # Inbound
    smtp_host: str = "127.0.0.1"
    smtp_port: Port = 2525
    intake_addresses: Annotated[tuple[Address, ...], NoDecode] = ("soc@securecall.example",)
    max_message_size: AtLeastOne = 25 * 1024 * 1024
    smtp_workers: AtLeastOne = 8
    # listener processes sharing smtp_port (SO_REUSEPORT; cli/supervisor.py); 0: one per core
    smtp_processes: NotNegative = 1
    # R6.7: STARTTLS offered with this certificate chain and key (PEM); unset: no STARTTLS
    smtp_tls_cert: File = ""
    smtp_tls_key: File = Field(default="", validate_default=True)  # checked with the cert
    # RCPT for these addresses needs STARTTLS first (530), e.g. the note and escalation addresses
    smtp_require_tls_for: Annotated[tuple[Address, ...], NoDecode] = Field(
        default=(), validate_default=True
    )
    imap_url: str = ""  # imap://user:password@host:port/INBOX or imaps://…; unset: no poller
    imap_processed_folder: Folder = "Processed"
    imap_quarantine_folder: Folder = "Quarantine"
    # move: to the Processed folder; flag: keyword $SecureCallProcessed
    imap_mark: Literal["move", "flag"] = "move"
    imap_poll_interval: Positive = 30.0
    # IDLE is ended and the mailbox polled this often (RFC 2177 asks for less than 29 minutes).
    # Short, because a mail that lands between the poll and the new IDLE is only announced at
    # the server's own next check (Dovecot: every 30 s by default).
    imap_idle_timeout: Annotated[float, Field(gt=0, lt=29 * 60)] = 60.0
    imap_use_idle: bool = True  # False: poll every imap_poll_interval even where IDLE is offered
    # CA certificates to trust for the IMAP server (a private CA)
    imap_ca_file: Annotated[str, AfterValidator(validators.existing_file)] = ""
    # Outbound
    outbound_url: str = ""  # smtp://host:port, smtps://…, maildir:PATH; unset: maildir under var/
    outbound_ca_file: File = ""  # CA certificates to trust for the relay (a private CA)
    # R6.7: DKIM signature of every outgoing mail; unset: unsigned
    dkim_key_file: File = ""  # written by `gateway dkim generate`
    dkim_selector: str = Field(default="", validate_default=True)  # checked with the key file
    dkim_domain: str = ""  # d=; unset: the domain of gateway_address
    gateway_address: Address = "soc@securecall.example"
    gateway_name: str = "SecureCall SOC"
    soc_queue_address: Address = "soc-queue@securecall.example"  # notifications and alerts
    soc_copy_files_limit: NotNegative = 10 * 1024 * 1024  # bytes of files sent with a SOC copy
    note_address: Address = "notes@securecall.example"  # SOC staff: an internal note on an SR
    escalation_address: Address = "escalation@securecall.example"  # customers: ask to escalate
    duty_management_address: Address = "duty-management@securecall.example"
    director_address: Address = "soc-directors@securecall.example"
    # §3.11.7: SOC management investigates queries of SecureHands session statements
    soc_management_address: Address = "soc-management@securecall.example"
    soc_phone: str = "+44 20 7946 0000"
    sus_fanout_batch: Annotated[int, Field(ge=1, le=10_000)] = 400  # subscribers per transaction
    # The web side (gateway/edges/web.py): one-click unsubscribe (RFC 8058), health
    web_host: str = "127.0.0.1"
    web_port: Port = 8025
    # the base of the links in mails (the reverse proxy's https address at scale)
    public_url: Annotated[str, AfterValidator(validators.public_url)] = "http://127.0.0.1:8025"
    secret_key: SecretStr = SecretStr("")  # HMAC keys of Message-IDs; unset: generated in var/
    # Workers and sweep
    worker_threads: AtLeastOne = 4
    # ms an idle in-process worker thread waits for a message before it looks whether to stop:
    # stopping takes two of these (Dramatiq stops its workers, then its consumers), and each
    # idle thread wakes this often (at 100, 1-2 % of a core for an idle gateway; at 20, 6 %)
    worker_poll_ms: Annotated[int, Field(ge=1, le=10_000)] = 100
    # `gateway bulk` processes `gateway run` starts beside itself on the embedded default to
    # send bulletin mail claimed from the database (workers/puller.py); 0: its own workers do
    bulk_processes: Annotated[int, Field(ge=0, le=16)] = 2
    # connections to the relay each worker thread sends bulletin mail over side by side: the
    # mails of one round are marked sent in one transaction (workers/smtp_relay.py)
    bulk_connections: Annotated[int, Field(ge=1, le=50)] = 5
    send_attempts: AtLeastOne = 12  # a Delivery that failed this often with 4xx is given up
    send_backoff: Positive = 5.0  # seconds before the first retry; doubles each time, up to 1 h
    sweep_interval: Positive = 5.0
    requeue_after: Positive = 60.0  # a pending Delivery not sent after this is enqueued again
    stale_sending_after: Positive = 300.0  # a Delivery "sending" this long was lost by a worker
    # Service levels and the clock
    # warn the SOC when this share of a target's time has passed
    warn_at_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.8
    update_hours_p1: Positive = 1.0  # §3.5.4: alert when an open SR had no SOC update this long
    update_hours_p2: Positive = 4.0
    update_hours_p3: Positive = 24.0
    update_hours_p4: Positive = 72.0
    soc_timezone: TimeZone = "Europe/London"  # §3.10: the SOC is in the UK; daily mails follow it
    review_time: TimeOfDay = "07:00"  # the team leaders' daily progress review
    tam_digest_time: TimeOfDay = "08:00"  # the TAMs' daily digest of new P3/P4 SRs
    # the SOC's public holidays: its working days (§3.10: the UK). The two countries' defaults
    # are checked by the tests (test_config.py), not at every start: checking a country loads
    # holidays' registry, a tenth of the start-up of a command that uses no calendar.
    soc_country: Country = Field(default="GB", validate_default=False)
    # §3.10: the account-review mail, on the SOC's first working day of each quarter
    account_review_time: TimeOfDay = "09:00"
    clock_interval: Positive = 5.0  # seconds between two looks at the due Deadlines
    # Loops and floods (R6.1); 0: no automatic replies at all
    autoreply_per_hour: NotNegative = 5  # automatic replies to one address per hour …
    autoreply_per_day: NotNegative = 20  # … and per day
    autoreply_per_sr_hour: NotNegative = 10  # automatic replies about one SR per hour
    smtp_sender_rate: AtLeastOne = 60  # mails accepted per envelope sender per minute (then 451)
    # Sender authentication (R6.4)
    auth_policy: Policy = "dkim_or_spf"  # contacts' domains without a policy of their own
    soc_auth_policy: Policy = "dmarc"  # SOC staff: their answers and commands must be genuine
    # unset: the system's resolver
    dns_servers: Annotated[
        tuple[Annotated[str, AfterValidator(validators.name_server)], ...], NoDecode
    ] = ()
    dns_timeout: Positive = 5.0  # seconds for all DNS lookups of one mail; then 451 (R6.6)
    trusted_authserv_ids: CommaList = ()  # Authentication-Results to believe (IMAP, relays)
    # IPs whose SMTP connections carry an upstream's verdict
    trusted_relays: Annotated[
        tuple[Annotated[str, AfterValidator(validators.ip_address)], ...], NoDecode
    ] = ()
    trusted_arc_sealers: CommaList = ()  # ARC sealers (d=) whose verdict stands for forwarded mail
    # Support Update Service (§3.8, R4.1–R4.4)
    sus_address: OptionalAddress = ""  # requests by mail, List-Unsubscribe; unset: sus@<domain>
    sus_subscribe_policy: Literal["admin", "immediate"] = "admin"  # R4.2: an admin approves, or not
    # the admins' own addresses: told of requests and suspensions; only they may #approve, #deny
    admin_addresses: Annotated[tuple[Address, ...], NoDecode] = ("sus-admin@securecall.example",)
    admin_name: str = ""  # who the command line's changes are by; unset: cli:<unix user>
    # The admin web (gateway/admin/, accounts by `gateway admins add`)
    admin_session_hours: Positive = 8.0  # a session ends this long after its sign-in
    admin_signin_per_address: AtLeastOne = 5  # sign-in attempts per address per window …
    admin_signin_per_ip: AtLeastOne = 20  # … and per client IP, counted for all web processes
    admin_signin_window_minutes: Positive = 15.0
    # R4.4, Mailman 3's defaults: suspended at this score, one increment per address and day …
    sus_bounce_score_threshold: Positive = 5.0
    sus_bounce_info_stale_after: Positive = 7.0  # … days after which a score starts again
    sus_bounce_notify_admins: bool = True  # Mailman's bounce_notify_owner_on_disable
    sus_bounce_resume_after: Positive = 24.0  # hours a later delivery must stand, unbounced
    # Policies
    notice_interval_hours: Positive = 24.0  # at most one notice per unregistered sender per this
    default_timezone: TimeZone = "Europe/Berlin"
    default_country: Country = Field(default="DE", validate_default=False)
    log_format: Literal["text", "json"] = "text"  # json: one JSON object per line

    @field_validator(*validators.URL_SCHEMES)
    @classmethod
    def _url(cls, value: str, info: ValidationInfo) -> str:
        return validators.url(value, str(info.field_name))

    @field_validator(
        "intake_addresses",
        "admin_addresses",
        "smtp_require_tls_for",
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

    @field_validator("smtp_tls_key")
    @classmethod
    def _key_pair(cls, value: str, info: ValidationInfo) -> str:
        return validators.certificate_pair(info.data.get("smtp_tls_cert", ""), value)

    @field_validator("smtp_require_tls_for")
    @classmethod
    def _tls_offered(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if value and not info.data.get("smtp_tls_key"):
            raise ValueError("TLS can be required only where it is offered: set SMTP_TLS_CERT")
        return value

    @field_validator("dkim_selector")
    @classmethod
    def _dkim_pair(cls, value: str, info: ValidationInfo) -> str:
        key = info.data.get("dkim_key_file", "")
        if bool(key) != bool(value):
            raise ValueError("DKIM signing needs both DKIM_KEY_FILE and DKIM_SELECTOR")
        return validators.selector(value) if value else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = config_path()
        return (init_settings, env_settings, _TomlFile(settings_cls, toml_file))

    # --- derived values -------------------------------------------------------------------

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.var_dir / 'gateway.db'}"

    @property
    def outbound(self) -> str:
        return self.outbound_url or f"maildir:{self.var_dir / 'outbound'}"

    @property
    def accepted_addresses(self) -> frozenset[str]:
        """What RCPT TO accepts: the intake addresses, the note, escalation and SUS addresses
        (and, edges/smtp.py, the VERP return paths of bulletins)."""
        extra = (self.note_address, self.escalation_address, self.sus_mailbox)
        return frozenset(a.lower() for a in (*self.intake_addresses, *extra) if a)

    def update_interval(self, priority: int) -> float:
        """§3.5.4: hours an open SR of this priority may go without a SOC update."""
        return float(getattr(self, f"update_hours_p{priority}"))

    @property
    def sus_mailbox(self) -> str:
        """R4.2: where contacts ask to subscribe or unsubscribe (and List-Unsubscribe's mailto)."""
        return (self.sus_address or f"sus@{self.domain}").lower()

    @property
    def domain(self) -> str:
        return self.gateway_address.rpartition("@")[2] or "localhost"

    @property
    def signing_domain(self) -> str:
        """DKIM's d=: GATEWAY_DKIM_DOMAIN, else the gateway address's domain (DMARC-aligned)."""
        return self.dkim_domain or self.domain

    @property
    def sus(self) -> str:
        """The Support Update Service's address (§3.8): GATEWAY_SUS_ADDRESS, else sus@domain."""
        return self.sus_mailbox

    @property
    def hmac_keys(self) -> dict[str, bytes]:
        """Key id -> key. The first is used to sign; all verify (rotation: prepend a new one)."""
        raw = self.secret_key.get_secret_value() or _generated_secret(self.var_dir)
        keys = [k.strip() for k in raw.split(",") if k.strip()]
        return {f"k{len(keys) - i}": key.encode() for i, key in enumerate(keys)}

    def redacted(self) -> dict[str, Any]:
        """The settings in effect, for display: derived URLs filled in, passwords hidden."""
        shown = self.model_dump(mode="json")
        shown["database_url"], shown["outbound_url"] = self.database, self.outbound
        shown["sus_address"] = self.sus
        for name in validators.URL_SCHEMES:
            shown[name] = validators.without_password(shown[name])
        generated = f"(generated in {self.var_dir / 'secret.key'})"
        shown["secret_key"] = "***" if self.secret_key.get_secret_value() else generated
        return shown

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # SecretStr hides itself; the passwords in URLs are hidden here.
        for name, value in super().__repr_args__():
            hidden = name in validators.URL_SCHEMES and isinstance(value, str)
            yield name, validators.without_password(value) if hidden else value


# Paths a configuration file may give relative to itself.
PATHS = (
    "var_dir",
    "imap_ca_file",
    "outbound_ca_file",
    "smtp_tls_cert",
    "smtp_tls_key",
    "dkim_key_file",
)


class _TomlFile(TomlConfigSettingsSource):
    """The TOML file, its relative paths taken from the file's own directory: a service started
    anywhere (systemd, cron, a shell in another directory) finds the same var/ and keys."""

    def __call__(self) -> dict[str, Any]:
        values = super().__call__()
        base = config_path().resolve().parent
        for name in PATHS:
            value = values.get(name)
            if isinstance(value, str) and value and not Path(value).is_absolute():
                values[name] = str(base / value)
        return values


def config_path() -> Path:
    return Path(os.environ.get("GATEWAY_CONFIG", "gateway.toml"))


class ConfigError(Exception):
    """Settings that cannot be used: one line per problem, naming the setting and its source."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def load() -> Settings:
    """The settings from GATEWAY_* variables and the TOML file, each checked; or ConfigError."""
    path = config_path()
    try:
        return Settings()
    except ValidationError as exc:
        in_file = _keys_in(path)
        raise ConfigError([_problem(e, path, in_file) for e in exc.errors()]) from None
    except tomllib.TOMLDecodeError as exc:
        # Python 3.11 gives the position only in the message: "… (at line 3, column 5)"
        what, _, where = str(exc).rpartition(" (at ")
        where = where.rstrip(")")
        raise ConfigError([f"{path}, {where}: {what or exc}"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"cannot read {path}: {exc}"]) from None


def _keys_in(path: Path) -> set[str]:
    try:
        with path.open("rb") as file:
            return set(tomllib.load(file))
    except (OSError, ValueError):
        return set()


def _problem(error: Any, path: Path, in_file: set[str]) -> str:
    name = str(error["loc"][0]) if error["loc"] else ""
    variable = f"GATEWAY_{name.upper()}"
    if error["type"] == "extra_forbidden":
        close = difflib.get_close_matches(name, Settings.model_fields, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return f"{name} in {path}: not a setting{hint}"
    if any(key.upper() == variable for key in os.environ):
        source = f"{variable} (environment variable)"
    elif name in in_file:
        source = f"{variable} ({name} in {path})"
    else:
        source = variable
    return f"{source}: {_message(error, name)}"


def _message(error: Any, name: str) -> str:
    if error["type"] == "value_error":
        return str(error["ctx"]["error"])
    message = str(error["msg"]).removeprefix("Input ")
    if name in SECRETS or name in validators.URL_SCHEMES:
        return message  # never repeat a key or a password
    return f"{message}, not {error['input']!r}"


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
