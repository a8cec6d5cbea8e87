"""A real SMTP server on loopback for the gatekeeper tests (aiosmtpd, served by the test's own loop)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import socket
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

LINK = re.compile(r"^(https?://[^\s/]+)/apply/([0-9a-f-]{36})(/status)?\?token=([A-Za-z0-9_.-]+)$", re.MULTILINE)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Mailbox:
    """What the SMTP server received: one parsed message per delivery, with its raw bytes."""

    messages: list[EmailMessage] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        self.raw.append(raw)
        self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        self.messages.append(email.message_from_bytes(raw, policy=email.policy.default))  # type: ignore[arg-type]
        async with self.arrived:
            self.arrived.notify_all()
        return "250 OK"

    async def wait_for(self, count: int, timeout: float = 15.0) -> list[EmailMessage]:
        async def enough() -> None:
            async with self.arrived:
                await self.arrived.wait_for(lambda: len(self.messages) >= count)

        await asyncio.wait_for(enough(), timeout)
        return self.messages

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address in str(m["To"])]


class SmtpServer:
    """aiosmtpd on 127.0.0.1:<port>; ``stop()`` and ``start()`` again to simulate an outage."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.mailbox = Mailbox()
        self._server: asyncio.base_events.Server | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self.mailbox, hostname="mail.test", enable_SMTPUTF8=True, decode_data=False),
            "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None


def body_text(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def links(msg: EmailMessage) -> list[tuple[str, str, bool, str]]:
    """(base, application id, is the manage link, token) of each link standing on a line of its own."""
    return [(m.group(1), m.group(2), bool(m.group(3)), m.group(4)) for m in LINK.finditer(body_text(msg))]


def application(**changes: Any) -> dict[str, Any]:
    from tests.integration.support import CONTACT, MINIMAL_ORG

    body: dict[str, Any] = {
        "type": "organisation",
        "payload": {**MINIMAL_ORG, "contact": CONTACT, "website": "https://cyberlab.example.de"},
        "visibility": "public",
        "applicant": {"name": "Erika Mustermann", "email": "erika@cyberlab.example.de"},
        "accept_terms": True,
    }
    body.update(changes)
    return body
