"""`gateway bulletins`: the Support Update Service's advisories (§3.8): write, look, publish."""

from __future__ import annotations

import getpass
import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from cli.choices import Kind, Severity
from cli.output import JsonFlag, fail, table
from cli.runtime import runtime
from gateway.core.runtime import Runtime
from gateway.outbound.outbox import in_process
from gateway.sus import bulletins as sus_bulletins
from gateway.sus.bulletins import BulletinError, BulletinState, Draft

bulletins = typer.Typer(no_args_is_help=True, help="Support Update Service bulletins (§3.8).")
GROUPS = ((bulletins, "bulletins"),)
IDLE_HINT = 15.0  # seconds without progress before saying who should be taking the fan-out


def _admin() -> str:
    """Who did it, for the bulletin's record: the account running the command."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


@bulletins.command("create")
def bulletins_create(
    product: Annotated[str, typer.Option(help="The product's name, as in `products list`.")],
    kind: Annotated[Kind, typer.Option(case_sensitive=False)],
    title: Annotated[str, typer.Option(help="One line.")],
    body: Annotated[
        Path, typer.Option(exists=True, dir_okay=False, readable=True, help="Markdown file.")
    ],
    severity: Annotated[Severity, typer.Option(case_sensitive=False)] = Severity.medium,
    url: Annotated[str | None, typer.Option(help="The manufacturer's advisory.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Write a bulletin (a draft until `publish`); prints its id."""
    try:
        text = body.read_text("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"cannot read {body}: {exc}") from None
    draft = Draft(product, kind, title, text, severity, url)
    with runtime(broker=False) as rt:
        try:
            with rt.sessions.begin() as session:
                bulletin_id = sus_bulletins.create(session, draft, _admin(), rt.now()).id
        except BulletinError as exc:
            raise fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps({"id": bulletin_id, "state": BulletinState.draft}))
    else:
        typer.echo(bulletin_id)


@bulletins.command("preview")
def bulletins_preview(
    bulletin_id: Annotated[int, typer.Argument(metavar="ID")],
    out: Annotated[
        Path | None, typer.Option(help="Write the whole mail here (.eml) instead.")
    ] = None,
) -> None:
    """The mail as a subscriber gets it: subject, text and HTML (or the .eml with --out)."""
    from workers.preview import preview as render_preview  # Markdown, CSS, templates: only here

    with runtime(broker=False, writes=False) as rt:
        try:
            shown = render_preview(rt, bulletin_id)
        except BulletinError as exc:
            raise fail(str(exc)) from None
    if out is not None:
        out.write_bytes(shown.eml)
        typer.echo(f"written to {out}")
        return
    typer.echo(f"Subject: {shown.subject}\n\n{shown.text}")
    typer.echo("-" * 72)
    typer.echo(shown.html)


@bulletins.command("publish")
def bulletins_publish(
    bulletin_id: Annotated[int, typer.Argument(metavar="ID")],
    wait: Annotated[
        bool, typer.Option(help="Wait until every Delivery is written (a bar on a terminal).")
    ] = True,
) -> None:
    """Send a bulletin to every active subscriber of its product and kind, once each.

    Run again after a crash, it writes only who is left; the sending goes on in the workers.
    """
    with runtime() as rt:
        hand_over = not in_process(rt.outbox.broker)  # else the running gateway's sweep takes it
        try:
            state = sus_bulletins.publish(rt, bulletin_id, _admin(), hand_over=hand_over)
            if state == BulletinState.publishing and wait:
                _follow(rt, bulletin_id, hand_over)
            figures = sus_bulletins.status(rt, bulletin_id)
        except BulletinError as exc:
            raise fail(str(exc)) from None
        finally:
            rt.outbox.broker.close()
    typer.echo(
        f"bulletin {bulletin_id} {figures['state']}: {figures['written']} of "
        f"{figures['audience']} written, {figures['sent']} sent so far"
    )


def _follow(rt: Runtime, bulletin_id: int, hand_over: bool) -> None:
    """Until the fan-out has written the last batch: a progress bar on a terminal."""
    from rich.console import Console  # only a command that waits draws a bar
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    console = Console(stderr=True)
    last_change, last = time.monotonic(), -1
    with Progress(
        TextColumn(f"bulletin {bulletin_id}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not sys.stderr.isatty(),
        transient=False,
    ) as bar:
        task = bar.add_task("fan-out", total=None)
        while True:
            state, written, audience = sus_bulletins.progress(rt, bulletin_id)
            bar.update(task, completed=written, total=audience)
            if state == BulletinState.published:
                return
            if written != last:
                last_change, last = time.monotonic(), written
            elif time.monotonic() - last_change > IDLE_HINT:
                who = "a worker" if hand_over else "`gateway run` (or `gateway smtp`)"
                console.print(f"no progress for {IDLE_HINT:.0f} s: is {who} running?")
                last_change = time.monotonic()
            time.sleep(0.2)


@bulletins.command("status")
def bulletins_status(
    bulletin_id: Annotated[int, typer.Argument(metavar="ID")], as_json: JsonFlag = False
) -> None:
    """Audience, written, sent, failed, cancelled, bounced, unsubscribed since publication."""
    with runtime(broker=False, writes=False) as rt:
        try:
            figures = sus_bulletins.status(rt, bulletin_id)
        except BulletinError as exc:
            raise fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(figures, indent=2, ensure_ascii=False))
        return
    for key, value in figures.items():
        typer.echo(f"{key:20} {'' if value is None else value}")


@bulletins.command("list")
def bulletins_list(as_json: JsonFlag = False) -> None:
    """Every bulletin, newest first."""
    with runtime(broker=False, writes=False) as rt, rt.sessions.begin() as session:
        rows = sus_bulletins.listing(session)
    table(rows, as_json, ("id", "product", "kind", "severity", "state", "title", "published_at"))
