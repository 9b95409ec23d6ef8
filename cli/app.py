"""`gateway …`: run the gateway, or its parts at scale, and manage and read what it stores.

The composition root: the commands that run the gateway are here; the admin commands are one
module per group (directory, admins, requests, review, deliveries, securehands, sessions, sus,
reports, dkim), each imported only by its own commands (cli/groups.py); cli/output.py is how
they speak. Each command imports what it uses when it runs, so that `gateway config` loads no
database and `gateway requests list` no listener.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.groups import Gateway
from cli.output import fail
from cli.runtime import configured, runtime
from cli.serve import ListenError, Services, check_listen, run_until_signal
from gateway.core import validators
from gateway.core.settings import Settings
from gateway.observe import logs

if TYPE_CHECKING:
    from gateway.core.runtime import Runtime

app = typer.Typer(
    cls=Gateway, no_args_is_help=True, add_completion=False, help=__doc__.split("\n\n")[0]
)


@app.callback()
def _options(
    config: Annotated[Path | None, typer.Option(help="TOML file (default ./gateway.toml).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    if config is not None:
        if not config.is_file():  # named on purpose: not there is an error (./gateway.toml may be)
            what = "is not a file" if config.exists() else "does not exist"
            raise fail(f"configuration file {config} {what}")
        os.environ["GATEWAY_CONFIG"] = str(config)
    # From the environment now, so that what start-up says is in the format asked for; a
    # log_format in the file takes over when the settings are read (cli/runtime.py `configured`)
    level = logging.DEBUG if verbose else logging.INFO
    logs.configure(os.environ.get("GATEWAY_LOG_FORMAT", "text").lower(), level)


def main() -> None:
    app()


def _listenable(settings: Settings, *, smtp: bool = True, web: bool = False) -> Settings:
    """Settings whose SMTP (and web) address can be bound: checked before anything is loaded or
    said."""
    try:
        if smtp:
            check_listen(settings.smtp_host, settings.smtp_port)
        if web:
            check_listen(settings.web_host, settings.web_port)
    except ListenError as exc:
        raise fail(str(exc)) from None
    return settings


Processes = Annotated[
    int | None,
    typer.Option(
        "--processes",
        min=0,
        help="Listener processes sharing the SMTP port (default GATEWAY_SMTP_PROCESSES; 0: one "
        "per core).",
    ),
]
# Given by the supervisor to its children (cli/supervisor.py): the pipe to say "listening" on
ReadyFd = Annotated[int | None, typer.Option("--ready-fd", hidden=True)]


def _serve(services: Services, ready_fd: int | None = None) -> None:
    services.reuse_port = ready_fd is not None
    try:
        run_until_signal(services, ready_fd)
    except ListenError as exc:
        raise fail(str(exc)) from None
    except _start_errors() as exc:  # e.g. no Maildir can be made, no DKIM key read
        raise fail(f"cannot start: {exc}") from None


def _start_errors() -> tuple[type[Exception], ...]:
    """OSError, and SigningKeyError once workers.signing is loaded (only then can one be raised):
    dkim and cryptography are not loaded for this `except` before the poller and listener start."""
    signing = sys.modules.get("workers.signing")
    return (OSError, signing.SigningKeyError) if signing is not None else (OSError,)


def _supervise(settings: Settings, processes: int, commands: list[str]) -> None:
    """`processes` children sharing the SMTP port: one `gateway <command>` for each of
    `commands`, the last one repeated for the rest; the schema is brought up to date first,
    once, rather than by every child at the same time."""
    from cli.supervisor import Supervisor

    with runtime(settings, broker=False):
        pass
    argv = [sys.executable, "-m", "cli"]
    if logging.getLogger().getEffectiveLevel() <= logging.DEBUG:
        argv.append("--verbose")
    names = [*commands, *[commands[-1]] * (processes - len(commands))][:processes]
    children = [(f"{n + 1}/{processes} ({name})", [*argv, name]) for n, name in enumerate(names)]
    if Supervisor(children).run() != 0:
        raise fail("the listener processes could not start")


@app.command()
def run(
    demo_data: Annotated[
        bool, typer.Option("--demo", help="Load the demo customer first.")
    ] = False,
    processes: Processes = None,
    ready_fd: ReadyFd = None,
) -> None:
    """Everything in one process: listener, poller (if configured), workers, sweep, web. With
    --processes N, N-1 more listener processes share the SMTP port (`gateway smtp`, each with
    its own workers when no broker is configured)."""
    from cli.supervisor import processes_for

    settings = configured() if ready_fd is not None else _listenable(configured(), web=True)
    count = processes_for(settings.smtp_processes if processes is None else processes)
    if ready_fd is None and count > 1:
        if demo_data:
            _load_demo(settings)
        _supervise(settings, count, ["run", "smtp"])
        return
    with runtime(settings, serving=True) as rt:
        if demo_data:
            _load_demo(settings, rt)
        _banner(rt)
        from gateway.outbound.outbox import in_process

        # on the embedded default bulletin mail goes out from processes of its own (a broker's
        # workers are processes of their own already)
        bulk = settings.bulk_processes if in_process(rt.outbox.broker) else 0
        services = Services(
            rt,
            smtp=True,
            imap=True,
            workers=True,
            sweep=True,
            clock=True,
            web=True,
            bulk_processes=bulk,
        )
        _serve(services, ready_fd)


def _load_demo(settings: Settings, rt: Runtime | None = None) -> None:
    if rt is None:
        with runtime(settings, broker=False) as own:
            _load_demo(settings, own)
        return
    from gateway.directory import demo

    with rt.sessions.begin() as session:
        if demo.load(session, rt.now()):
            logging.getLogger("gateway").info("demo customer %r loaded", demo.CUSTOMER)


@app.command()
def smtp(processes: Processes = None, ready_fd: ReadyFd = None) -> None:
    """The SMTP listener alone (with its own workers when no broker is configured); with
    --processes N, N listener processes share the port."""
    from cli.supervisor import processes_for
    from gateway.outbound.outbox import in_process

    settings = configured() if ready_fd is not None else _listenable(configured())
    count = processes_for(settings.smtp_processes if processes is None else processes)
    if ready_fd is None and count > 1:
        _supervise(settings, count, ["smtp"])
        return
    with runtime(settings, serving=True) as rt:
        services = Services(rt, smtp=True, workers=in_process(rt.outbox.broker), sweep=True)
        _serve(services, ready_fd)


@app.command()
def bulk(
    ready_fd: ReadyFd = None,
    parent_pid: Annotated[int | None, typer.Option("--parent-pid", hidden=True)] = None,
) -> None:
    """Bulletin mail claimed straight from the database and sent (GATEWAY_WORKER_THREADS
    threads); `gateway run` starts GATEWAY_BULK_PROCESSES of these beside itself on the
    embedded default."""
    if parent_pid is not None:  # started beside a gateway: end with it (cli/supervisor.py)
        from cli.supervisor import end_with_parent

        end_with_parent()
        if os.getppid() != parent_pid:  # it ended before this process could ask to be told
            raise SystemExit(0)
    with runtime(configured(), serving=True) as rt:
        _serve(Services(rt, pull=True), ready_fd)


@app.command()
def imap() -> None:
    """The IMAP poller of GATEWAY_IMAP_URL alone (one per mailbox)."""
    settings = configured()
    if not settings.imap_url:
        raise fail("GATEWAY_IMAP_URL is not set")
    from gateway.outbound.outbox import in_process

    with runtime(settings, serving=True) as rt:
        _serve(Services(rt, imap=True, workers=in_process(rt.outbox.broker), sweep=True))


@app.command()
def web() -> None:
    """The web side alone: the admin web, one-click unsubscribe, /healthz and /metrics on
    GATEWAY_WEB_HOST:PORT (with its own workers when no broker is configured: the admin web's
    actions write mail)."""
    from gateway.outbound.outbox import in_process

    with runtime(_listenable(configured(), smtp=False, web=True), serving=True) as rt:
        _serve(Services(rt, web=True, workers=in_process(rt.outbox.broker), sweep=True))


@app.command("clock")
def run_clock() -> None:
    """The clock alone: alerts, escalations, daily reviews (several may run on PostgreSQL)."""
    from gateway.outbound.outbox import in_process

    with runtime(serving=True) as rt:
        _serve(Services(rt, clock=True, workers=in_process(rt.outbox.broker), sweep=True))


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (writing commands also do this; any, on first use)."""
    with runtime(broker=False):
        typer.echo("schema is up to date")


@app.command("config")
def show_config(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the settings in effect (derived defaults filled in), passwords hidden."""
    shown = configured().redacted()
    if as_json:
        typer.echo(json.dumps(shown, indent=2, ensure_ascii=False))
        return
    for name, value in shown.items():  # TOML's notation, as in gateway.toml
        typer.echo(f"{name} = {json.dumps(value, ensure_ascii=False)}")


@app.command("metrics")
def show_metrics() -> None:
    """Print the metrics in Prometheus' text format (of every process writing to
    PROMETHEUS_MULTIPROC_DIR when it is set), as GET /metrics serves them."""
    from gateway.observe.exposition import render_metrics

    with runtime(broker=False, writes=False) as rt:
        body, _content_type = render_metrics(rt)
    sys.stdout.buffer.write(body)
    sys.stdout.flush()


@app.command("demo")
def load_demo() -> None:
    """Load the demo customer, its contacts and products (once)."""
    from gateway.directory import demo

    with runtime(broker=False) as rt, rt.sessions.begin() as session:
        loaded = demo.load(session, rt.now())
    typer.echo("demo customer loaded" if loaded else "demo customer was there already")


def _banner(rt: Runtime) -> None:
    s = rt.settings
    # a log line, so that with GATEWAY_LOG_FORMAT=json every line on stderr is a JSON object
    logging.getLogger("gateway").info(
        "SecureCall gateway: SMTP on %s:%s for %s; outbound to %s; database %s; web on %s:%s",
        s.smtp_host,
        s.smtp_port,
        ", ".join(s.intake_addresses),
        validators.without_password(s.outbound),
        validators.without_password(s.database),
        s.web_host,
        s.web_port,
    )
