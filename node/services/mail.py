"""The mail outbox (DESIGN §12): queued in the database, sent by SMTP or written as .eml files.

A mail is a row of ``mail_outbox`` written in the same transaction as what it tells (an application,
a decision), so it is never lost and never sent for something that did not happen. The outbox loop
of ``ncc serve`` sends what is due: through SMTP when ``smtp_url`` is set, else as one RFC 5322
``.eml`` file per message in ``<data-dir>/outbox/`` (mode 0600). A failed attempt waits 30 s, then
twice as long each time up to ``mail_retry_max_s``, and is retried forever: a mail server that is
down delays mail, it loses nothing. A sent message's body is dropped from the database.

SMTP runs in a thread with the standard library's ``smtplib``: the node sends a handful of mails an
hour, so an extra dependency (``aiosmtplib``) buys nothing, and the thread keeps the event loop free
while a slow server answers. Header values are built here only, from fixed subjects and addresses
checked at the door; every value still goes through :func:`header_text` (no CR, LF or other control
character can reach a header, whatever a caller passes).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import smtplib
import ssl
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, formataddr, make_msgid, parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from tortoise.backends.base.client import BaseDBAsyncClient

from federation.timefmt import format_timestamp, parse_timestamp
from node.config import Settings
from node.storage.gatekeeper_models import MailMessage

log = logging.getLogger("ncc.mail")

FIRST_RETRY_S = 30
#: A message being sent is leased for this long (another process sharing the database skips it).
LEASE_S = 120
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\u0085]")


class MailError(Exception):
    """Sending failed; the message stays queued."""


def header_text(value: str, limit: int = 200) -> str:
    """``value`` with every control character (CR and LF above all) replaced by a space, bounded: what a
    mail header may carry of a value the node stores (unlike :func:`node.errors.header_safe`, which refuses
    a client's value that carries one)."""
    return re.sub(r"\s+", " ", _CONTROL.sub(" ", value)).strip()[:limit]


def sender(settings: Settings) -> str:
    """The ``From`` address: ``mail_from``, else ``noreply@<host of url>``."""
    if settings.mail_from:
        return header_text(settings.mail_from, 300)
    host = urlsplit(settings.base_url).hostname or "localhost"
    return f"NCC {settings.country} <noreply@{host}>"


async def enqueue(conn: BaseDBAsyncClient | None, now: datetime, kind: str, to_addr: str, subject: str,
                  body: str, *, to_name: str = "", record_id: str | None = None,
                  application_id: str | None = None) -> MailMessage:
    """Queue one mail (in the caller's transaction when ``conn`` is given); sent at once if possible."""
    row = await MailMessage.create(
        kind=kind, created_at=format_timestamp(now), to_name=header_text(to_name), to_addr=header_text(to_addr, 254),
        subject=header_text(subject, 300), body=body, next_attempt_at=format_timestamp(now),
        record_id=record_id, application_id=application_id, using_db=conn,
    )
    for event in list(_RUNNING):
        event.set()
    return row


#: The wake-up events of this process's running outbox loops: a queued mail is sent without waiting
#: for the next poll (each loop owns its event, created on its own event loop).
_RUNNING: set[asyncio.Event] = set()


def build_message(settings: Settings, row: MailMessage, now: datetime) -> EmailMessage:
    """The RFC 5322 message of a queued mail: UTF-8 ``text/plain``, headers from checked values only."""
    msg = EmailMessage(policy=SMTP_POLICY)
    from_addr = sender(settings)
    msg["From"] = from_addr
    msg["To"] = formataddr((header_text(row.to_name), header_text(row.to_addr, 254)))
    msg["Subject"] = header_text(row.subject, 300)
    msg["Date"] = format_datetime(now)
    domain = parseaddr(from_addr)[1].rpartition("@")[2] or "localhost"
    msg["Message-ID"] = make_msgid(idstring=f"ncc{row.id}", domain=header_text(domain, 100))
    msg["Auto-Submitted"] = "auto-generated"
    body = row.body if row.body.endswith("\n") else row.body + "\n"
    # 8bit keeps each link on one line in the raw message too (quoted-printable would fold it)
    msg.set_content(body, charset="utf-8", cte="8bit" if not body.isascii() else "7bit")
    return msg


def write_eml(outbox: Path, row: MailMessage, msg: EmailMessage, now: datetime) -> Path:
    """Write ``msg`` as ``<outbox>/<time>-<id>.eml``, mode 0600, atomically (a reader never sees half)."""
    outbox.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(outbox, 0o700)
    name = f"{now.strftime('%Y%m%dT%H%M%SZ')}-{row.id:08d}.eml"
    path = outbox / name
    tmp = outbox / f".{name}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(msg.as_bytes(policy=SMTP_POLICY))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def remove_files(outbox: Path, ids: list[int]) -> None:
    """Delete the .eml files written for these messages (erasure)."""
    if not outbox.is_dir():
        return
    for mid in ids:
        for path in outbox.glob(f"*-{mid:08d}.eml"):
            path.unlink(missing_ok=True)


def smtp_password(settings: Settings) -> str:
    """The SMTP password from ``smtp_password_file`` ('' when none is set).

    Raises:
        MailError: the file is missing, unreadable, or readable by group or others.
    """
    if not settings.smtp_password_file:
        return ""
    path = Path(settings.smtp_password_file)
    if not path.is_absolute():
        path = settings.data_dir / path
    try:
        if path.stat().st_mode & 0o077:
            raise MailError(f"smtp_password_file {path} is readable by group or others (chmod 600)")
        return path.read_text(encoding="utf-8").strip("\r\n")
    except OSError as exc:
        raise MailError(f"smtp_password_file {path} unreadable: {exc.__class__.__name__}") from exc


def send_smtp(settings: Settings, msg: EmailMessage) -> None:
    """Deliver one message to ``smtp_url`` (blocking: run it in a thread).

    Raises:
        MailError: connection, TLS, authentication or refusal (the message stays queued).
    """
    url = urlsplit(settings.smtp_url)
    host = url.hostname or "localhost"
    port = url.port or (465 if url.scheme == "smtps" else 25)
    password = smtp_password(settings)
    try:
        if url.scheme == "smtps":
            client: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=settings.smtp_timeout_s,
                                                    context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(host, port, timeout=settings.smtp_timeout_s)
        with client:
            client.ehlo()
            if url.scheme == "smtp" and client.has_extn("starttls"):
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            if url.username:
                client.login(unquote(url.username), password)
            options = ["BODY=8BITMIME"] if client.has_extn("8bitmime") else []
            if not options and not msg.get_content().isascii():
                msg.set_content(msg.get_content(), charset="utf-8", cte="base64")
            client.send_message(msg, mail_options=options)
    except (OSError, smtplib.SMTPException, ssl.SSLError) as exc:
        raise MailError(f"{exc.__class__.__name__}: {str(exc)[:200]}") from exc


class Outbox:
    """Sends the queued mails that are due; one instance per serving process."""

    def __init__(self, settings: Settings, clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.clock = clock

    def backoff(self, attempts: int) -> int:
        return int(min(self.settings.mail_retry_max_s, FIRST_RETRY_S * 2 ** max(0, attempts - 1)))

    async def deliver_due(self, limit: int = 50) -> int:
        """Send up to ``limit`` due messages; return how many were sent."""
        now = self.clock()
        due = await MailMessage.filter(state="pending", next_attempt_at__lte=format_timestamp(now)) \
            .order_by("id").limit(limit)
        sent = 0
        for row in due:
            lease = format_timestamp(now + timedelta(seconds=LEASE_S))
            claimed = await MailMessage.filter(id=row.id, state="pending",
                                               next_attempt_at=row.next_attempt_at).update(next_attempt_at=lease)
            if not claimed:
                continue  # another process took it
            try:
                await self.send(row, now)
            except MailError as exc:
                attempts = row.attempts + 1
                wait = min(self.backoff(attempts), self.settings.mail_retry_max_s)
                await MailMessage.filter(id=row.id).update(
                    attempts=attempts, last_error=str(exc)[:300],
                    next_attempt_at=format_timestamp(now + timedelta(seconds=wait)))
                log.warning("mail not sent; retrying", extra={"mail_id": row.id, "attempts": attempts,
                                                              "retry_in_s": wait, "error": str(exc)[:200]})
                continue
            await MailMessage.filter(id=row.id).update(state="sent", sent_at=format_timestamp(now), body="",
                                                       attempts=row.attempts + 1, last_error=None)
            sent += 1
        return sent

    async def send(self, row: MailMessage, now: datetime) -> None:
        """Deliver one message by SMTP or as an .eml file.

        Raises:
            MailError: it could not be delivered now.
        """
        msg = build_message(self.settings, row, now)
        if self.settings.smtp_url:
            await asyncio.to_thread(send_smtp, self.settings, msg)
            return
        try:
            await asyncio.to_thread(write_eml, self.settings.outbox_dir, row, msg, now)
        except OSError as exc:
            raise MailError(f"outbox not writable: {exc.__class__.__name__}") from exc

    async def run(self, stop: asyncio.Event, poll_s: float = 5.0) -> None:
        """Send what is due until ``stop``; woken at once when this process queues a mail."""
        from node.storage.availability import database_unavailable

        wake = asyncio.Event()
        _RUNNING.add(wake)
        try:
            while not stop.is_set():
                wake.clear()
                try:
                    await self.deliver_due()
                except Exception as exc:
                    if database_unavailable(exc):
                        log.warning("outbox postponed: database unavailable")
                    else:
                        log.exception("outbox error")
                waiter = asyncio.ensure_future(wake.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait({waiter, stopper}, timeout=poll_s, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopper.cancel()
                if wake.is_set():
                    # queued inside a transaction that may not have committed yet: give it a moment
                    await asyncio.sleep(0.1)
        finally:
            _RUNNING.discard(wake)


def describe(row: MailMessage) -> dict[str, Any]:
    """A queued message as the admin sees it (no body)."""
    return {"id": row.id, "kind": row.kind, "to": row.to_addr, "state": row.state, "attempts": row.attempts,
            "next_attempt_at": row.next_attempt_at, "last_error": row.last_error, "sent_at": row.sent_at,
            "created_at": row.created_at}


def parse_ts(text: str) -> datetime:
    return parse_timestamp(text)
