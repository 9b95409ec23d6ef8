"""The reports as JSON and as CSV (one table, read back by the standard library's csv module
with the same figures): None is an empty cell, a truth value true or false, a number as JSON
writes it."""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Protocol


class Report(Protocol):
    @property
    def columns(self) -> tuple[str, ...]: ...

    def as_json(self) -> dict[str, Any]: ...

    def rows(self) -> list[dict[str, Any]]: ...


def as_json(report: Report) -> str:
    return json.dumps(report.as_json(), indent=2, ensure_ascii=False)


def as_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(report.columns), lineterminator="\r\n")
    writer.writeheader()
    for row in report.rows():
        writer.writerow({name: cell(row.get(name)) for name in report.columns})
    return out.getvalue()


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return str(value)
