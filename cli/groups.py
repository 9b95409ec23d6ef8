"""The command groups of `gateway`, each imported when it is first asked for.

A command loads its own group's module and none of the others': importing every group (and all
of the gateway behind them) cost a read-only command most of its time. `gateway --help` still
lists them all, loading each.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

import typer
from typer.core import TyperGroup

# Group name -> the module that defines it (in its GROUPS), in the order `--help` lists them.
MODULES: Mapping[str, str] = {
    "customers": "cli.directory",
    "contacts": "cli.directory",
    "products": "cli.directory",
    "staff": "cli.directory",
    "domains": "cli.directory",
    "admins": "cli.admins",
    "requests": "cli.requests",
    "escalations": "cli.requests",
    "review": "cli.review",
    "quarantine": "cli.review",
    "deliveries": "cli.deliveries",
    "units": "cli.securehands",
    "sow": "cli.securehands",
    "sessions": "cli.sessions",
    "scans": "cli.sessions",
    "subscriptions": "cli.sus",
    "bulletins": "cli.bulletins",
    "reports": "cli.reports",
    "dkim": "cli.dkim",
}


def load(name: str) -> TyperGroup:
    """The click group of the group `name`, from its module's GROUPS."""
    module = importlib.import_module(MODULES[name])
    for sub, sub_name in module.GROUPS:
        if sub_name == name:
            group = typer.main.get_group(sub)
            group.name = name
            return group
    raise LookupError(f"{MODULES[name]} defines no group {name!r}")


class Commands(MutableMapping[str, Any]):
    """A group's commands: those given, then the groups of MODULES, each loaded on first use.

    Iterating names them all without loading any (a mistyped command's suggestions); looking one
    up loads it.
    """

    def __init__(self, given: Mapping[str, Any]) -> None:
        self._loaded: dict[str, Any] = dict(given)
        self._names = [*given, *(n for n in MODULES if n not in given)]

    def __getitem__(self, name: str) -> Any:
        if name not in self._names:
            raise KeyError(name)
        if name not in self._loaded:
            self._loaded[name] = load(name)
        return self._loaded[name]

    def __setitem__(self, name: str, command: Any) -> None:
        if name not in self._names:
            self._names.append(name)
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        if name not in self._names:
            raise KeyError(name)
        self._names.remove(name)
        self._loaded.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._names))

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._names


class Gateway(TyperGroup):
    """The `gateway` command: its own commands, and the groups of MODULES loaded lazily."""

    def __init__(self, *, commands: Mapping[str, Any] | None = None, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = Commands(commands or {})
