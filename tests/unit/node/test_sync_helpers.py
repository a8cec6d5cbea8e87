"""Reading a feed page's trailer ahead of its check (node.services.sync.next_page_cursor)."""

from __future__ import annotations

import pytest

from node.services.sync import next_page_cursor


@pytest.mark.parametrize(
    ("body", "at", "expected"),
    [
        (b'{"seq":1,"record":{}}\n{"next":7,"more":true,"head":9}\n', 0, 7),
        (b'{"seq":1,"record":{}}\n{"next":7,"more":true}', 0, 7),  # no final newline
        (b'{"next":7,"more":true}\n\n\n', 0, 7),
        (b'{"next":7,"more":false}\n', 0, None),  # the last page
        (b'{"next":7,"more":true}\n', 7, None),  # not advancing: the check decides
        (b'{"next":"7","more":true}\n', 0, None),
        (b'{"next":true,"more":true}\n', 0, None),
        (b'{"seq":1,"record":{}}\n{"next":7,"mo', 0, None),  # truncated
        (b"<html>", 0, None),
        (b"", 0, None),
        (b'[{"next":7,"more":true}]\n', 0, None),
    ],
)
def test_next_page_cursor(body: bytes, at: int, expected: int | None) -> None:
    assert next_page_cursor(body, at) == expected
