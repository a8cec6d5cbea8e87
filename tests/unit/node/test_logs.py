"""Log lines: JSON objects, or text with the same fields (``log_format``)."""

from __future__ import annotations

import logging

import orjson

from node.logs import JsonFormatter, TextFormatter


def record(msg: str, exc: bool = False, **extra: object) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            import sys

            exc_info = sys.exc_info()
    rec = logging.LogRecord("ncc.sync", logging.WARNING, __file__, 1, msg, None, exc_info)
    rec.__dict__.update(extra)
    return rec


def test_json_lines_carry_the_extra_fields() -> None:
    data = orjson.loads(JsonFormatter().format(record("pull failed", node="DE", error="refused")))
    assert (data["msg"], data["node"], data["error"], data["level"]) == ("pull failed", "DE", "refused", "WARNING")


def test_text_lines_carry_the_same_fields() -> None:
    """Regression (black-box pass): ``log_format = "text"`` printed ``WARNING ncc.sync: pull failed``
    and dropped which node and why (every ``extra`` field), and access lines had no method or path."""
    line = TextFormatter().format(record("pull failed", node="DE", error="ClientConnectorError: refused",
                                         failures=2))
    assert line.endswith('WARNING ncc.sync: pull failed node=DE error="ClientConnectorError: refused" failures=2')
    line = TextFormatter().format(record("request", path="/a b", status=200, empty=""))
    assert line.endswith('request path="/a b" status=200 empty=""')
    first, *trace = TextFormatter().format(record("boom", exc=True, node="FR")).splitlines()
    assert first.endswith("boom node=FR") and trace[0].startswith("Traceback") and "ValueError: boom" in trace[-1]
