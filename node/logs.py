"""Structured logging: one JSON object a line (or plain text), with the request id when there is one.

Log lines carry values from clients (request paths, error details): every control character in them
(C0, DEL, C1: CR, LF, ESC, TAB, CSI …) is escaped in both formats, so a request cannot forge a log
line or drive the terminal a log is read in. At INFO nothing personal is logged: the request line
has the path (no query string: search terms, names), never a token or its subject.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
#: Control characters: C0 (incl. TAB, LF, CR, ESC), DEL and C1 (incl. the one-byte CSI, U+009B).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape_one(match: re.Match[str]) -> str:
    char = match.group(0)
    return _NAMED.get(char) or f"\\x{ord(char):02x}"


def escape_controls(text: str, keep_newlines: bool = False) -> str:
    """``text`` with every control character written as an escape (``\\r``, ``\\x1b``, ``\\x9b``)."""
    return (_CONTROL_BUT_NEWLINE if keep_newlines else _CONTROL).sub(_escape_one, text)


def _json_safe(line: str) -> str:
    """orjson escapes C0 controls; DEL and C1 it leaves raw (valid JSON): escape them as \\u00XX too."""
    return re.sub(r"[\x7f-\x9f]", lambda m: f"\\u{ord(m.group(0)):04x}", line)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        data.update(_extras(record))
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return _json_safe(orjson.dumps(data, default=str).decode())


def _extras(record: logging.LogRecord) -> dict[str, object]:
    """The structured fields a call passed in ``extra`` (request id, node, error, …)."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message key=value …``: the same fields as the JSON lines, for people."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape_controls(super().formatMessage(record))

    def formatException(self, ei: Any) -> str:
        return escape_controls(super().formatException(ei), keep_newlines=True)

    def formatStack(self, stack_info: str) -> str:
        return escape_controls(super().formatStack(stack_info), keep_newlines=True)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = " ".join(f"{escape_controls(str(k))}={_text_value(v)}" for k, v in _extras(record).items())
        if not fields:
            return line
        head, newline, trace = line.partition("\n")  # a traceback stays below the line
        return f"{head} {fields}{newline}{trace}"


def _text_value(value: object) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    if not text or _CONTROL.search(text) or any(c in text for c in ' "='):
        text = _json_safe(orjson.dumps(text).decode())
    return text


def setup_logging(level: str, fmt: str) -> None:
    """Configure the root logger once for the process."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("tortoise", "aiosqlite", "asyncio", "apscheduler", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
