"""`gateway dkim`: the key that signs the gateway's mail (R6.7), and the DNS record to publish."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from cli.output import JsonFlag, checked, fail
from cli.runtime import configured
from gateway.core import validators
from workers import signing

dkim = typer.Typer(no_args_is_help=True, help="DKIM signing of outgoing mail.")
GROUPS = ((dkim, "dkim"),)


class Algorithm(StrEnum):
    ed25519 = "ed25519"  # RFC 8463: short keys; not every verifier knows it yet
    rsa = "rsa"  # RSA-2048: verified everywhere


@dkim.command("generate")
def generate(
    selector: Annotated[str, typer.Option(help="The selector (s=), e.g. gw2026.")],
    algorithm: Annotated[Algorithm, typer.Option(case_sensitive=False)] = Algorithm.ed25519,
    key_file: Annotated[
        Path | None, typer.Option(help="Where to write it (default <var_dir>/dkim/SELECTOR.key).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Write a new private key (mode 0600) and print the TXT record to publish for it."""
    selector = checked(validators.selector, selector)
    settings = configured()
    path = key_file or settings.var_dir / "dkim" / f"{selector}.key"
    key = signing.generate(algorithm.value)
    try:
        signing.write_key(path, key)
    except FileExistsError:
        raise fail(f"{path} exists: choose another selector or --key-file") from None
    except OSError as exc:
        raise fail(f"cannot write {path}: {exc.strerror}") from None
    domain = settings.signing_domain
    name = f"{selector}._domainkey.{domain}"
    if as_json:
        shown = {"key_file": str(path.resolve()), "algorithm": algorithm.value}
        shown |= {"selector": selector, "domain": domain, "name": name, "record": key.record()}
        typer.echo(json.dumps(shown, indent=2))
        return
    typer.echo(f"wrote {path.resolve()} ({algorithm.value}, readable by its owner only)")
    typer.echo("publish this record, then set GATEWAY_DKIM_KEY_FILE and GATEWAY_DKIM_SELECTOR:")
    typer.echo(signing.zone_line(selector, domain, key.record()))
