"""`gateway admins`: who may sign in to the admin web (GATEWAY_PUBLIC_URL/admin/)."""

from __future__ import annotations

import getpass
import sys

import typer

from cli.output import JsonFlag, fail, table
from cli.runtime import database
from gateway import directory
from gateway.directory import listings

admins = typer.Typer(no_args_is_help=True, help="Admin accounts of the admin web.")
GROUPS = ((admins, "admins"),)


@admins.command("add")
def admins_add(email: str) -> None:
    """Add an admin account (or give one a new password, which ends its sessions).

    The password is read from standard input: asked twice on a terminal, else its first line.
    """
    password = _password()
    try:
        password = directory.checked_password(password)
    except directory.DirectoryError as exc:
        raise fail(str(exc)) from None
    with database() as (session, rt):
        created = directory.add_admin(session, email, password, rt.now())
    typer.echo(f"admin {email.strip().lower()} {'added' if created else 'has a new password'}")


@admins.command("list")
def admins_list(as_json: JsonFlag = False) -> None:
    """List admin accounts: when each was added and last signed in."""
    with database() as (session, _rt):
        rows = [listings.admin(a) for a in directory.admin_accounts(session)]
    table(rows, as_json, ("email", "created_at", "signed_in_at"))


@admins.command("remove")
def admins_remove(email: str) -> None:
    """Remove an admin account: its sessions end at once."""
    with database() as (session, _rt):
        directory.remove_admin(session, email)
    typer.echo(f"admin {email.strip().lower()} removed")


def _password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:
            raise fail("the two passwords differ")
        return first
    line = sys.stdin.readline()
    return line.removesuffix("\n").removesuffix("\r")
