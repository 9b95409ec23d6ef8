"""The directory's checks of what an admin gives: addresses and fixed sets of values."""

from __future__ import annotations

import re

_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")


class DirectoryError(ValueError):
    """A directory change that cannot be made; the message says why."""


def address(value: str) -> str:
    value = value.strip().lower()
    if not _ADDRESS.match(value):
        raise DirectoryError(f"not a mail address: {value!r}")
    return value


def choice(value: str, allowed: tuple[str, ...], what: str) -> str:
    value = value.strip().lower().replace(" ", "_").replace("-", "_")
    if value not in allowed:
        raise DirectoryError(f"{what} must be one of {', '.join(allowed)}, not {value!r}")
    return value
