"""How the `gateway` command speaks: tables that wrap (rich), JSON, one-line errors."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from gateway.intake.receipts import Receipt

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def table(rows: list[dict[str, Any]], as_json: bool, columns: Sequence[str]) -> None:
    if as_json:
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        typer.echo("(none)")
        return
    from rich.console import Console  # only for a table: JSON and errors need none of it
    from rich.table import Table
    from rich.text import Text

    # Long cells wrap within the terminal's width (a word too long for its column is folded);
    # Text, not markup: a subject such as "[bold]" is shown as it was written.
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in columns:
        table.add_column(Text(column.upper()), overflow="fold")
    for row in rows:
        table.add_row(*(Text("" if row.get(c) is None else str(row[c])) for c in columns))
    Console(highlight=False).print(table)


def print_receipt(receipt: Receipt, as_json: bool) -> None:
    result = {
        "outcome": receipt.outcome,
        "stored_id": receipt.stored_id,
        "sr_id": receipt.sr_id,
        "reason": receipt.reason,
    }
    typer.echo(
        json.dumps(result, indent=2)
        if as_json
        else f"{receipt.outcome}: stored as {receipt.stored_id} {receipt.sr_id or receipt.reason}"
    )


def checked(check: Any, value: str) -> str:
    """`value` as `check` (gateway/core/validators.py) returns it, or the error at once."""
    try:
        return str(check(value))
    except ValueError as exc:
        raise fail(str(exc)) from None


def date_option(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise fail(f"not a date (YYYY-MM-DD): {value!r}") from None


def fail(message: str) -> typer.Exit:
    """Print the error; the caller raises the returned Exit (exit status 2)."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)
