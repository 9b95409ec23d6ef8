"""Log lines: text for people (the default), or one JSON object per line for a log shipper
(GATEWAY_LOG_FORMAT=json). What a line is about goes in `extra=` (event, message_id, sr_id, …)
and becomes fields of its object."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# What every LogRecord has; everything else on a record came with `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One object per record: time (UTC, ISO 8601), level, logger, message, and its fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(log_format: str, level: int | None = None) -> None:
    """Every handler of the root logger writes `log_format` (a stderr one is added if none)."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler(sys.stderr))
    if level is not None:
        root.setLevel(level)
    formatter = JsonFormatter() if log_format == "json" else logging.Formatter(TEXT)
    for handler in root.handlers:
        handler.setFormatter(formatter)
    for noisy in ("mail.log", "pika", "mailparser", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
