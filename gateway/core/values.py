"""Frozen dataclasses as plain values: a row's columns, a context's JSON.

`dataclasses.asdict` deep-copies every value it meets; on the mail path, with a Delivery's
context inside its row, that copying cost more than the statements it fed (a fifth of a mail's
time). These read the fields once per class and copy nothing but the containers.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from typing import Any

_NAMES: dict[type, tuple[str, ...]] = {}


def _names(cls: type) -> tuple[str, ...]:
    names = _NAMES.get(cls)
    if names is None:
        names = _NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


def columns(value: Any) -> dict[str, Any]:
    """A dataclass's fields as a dict, the values as they are (for an INSERT's parameters)."""
    return {name: getattr(value, name) for name in _names(type(value))}


_SCALARS = frozenset({str, int, float, bool, type(None)})


def plain(value: Any) -> Any:
    """A dataclass (and the dataclasses, lists and dicts in it) as JSON-able dicts and lists."""
    if type(value) in _SCALARS:  # most fields: no need to ask whether it is a dataclass
        return value
    if is_dataclass(value) and not isinstance(value, type):
        return {name: plain(getattr(value, name)) for name in _names(type(value))}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    return value
