"""``smtp_timeout_s`` bounds each step of an SMTP conversation (it was a constant, 30 s)."""

from __future__ import annotations

import socket
import threading
import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from node.config import build_settings
from node.services.mail import MailError, send_smtp


def test_a_server_that_never_greets_fails_the_attempt_at_smtp_timeout_s(tmp_path: Path) -> None:
    """A mail server that accepts the connection and then says nothing (a hung relay) holds the
    attempt for ``smtp_timeout_s``, then the mail waits for its next attempt (MailError)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    held: list[socket.socket] = []
    accepting = threading.Thread(target=lambda: held.append(listener.accept()[0]), daemon=True)
    accepting.start()
    settings = build_settings(tmp_path, {"role": "node", "country": "AT", "smtp_url": f"smtp://127.0.0.1:{port}",
                                         "smtp_timeout_s": 1})
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "ncc@example.org", "a@example.org", "x"
    msg.set_content("x")
    try:
        t0 = time.monotonic()
        with pytest.raises(MailError, match="timed out|TimeoutError"):
            send_smtp(settings, msg)
        assert 0.9 <= time.monotonic() - t0 < 10
    finally:
        for conn in held:
            conn.close()
        listener.close()
    assert build_settings(tmp_path, {"role": "node", "country": "AT"}).smtp_timeout_s == 30
