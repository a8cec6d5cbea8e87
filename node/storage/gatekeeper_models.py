"""Tortoise models of the gatekeeper (DESIGN §12), node role.

``Application`` — an anonymous application until it is confirmed (then it points at the record it
created); ``VersionEvent`` — who caused each signed version and why (the side table of the history:
kept OUTSIDE the signed envelope, so a note or an assessor's name never travels to the hub);
``MailMessage`` — the outbox queue: every mail the node sends, retried until delivered.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Application(Model):
    """One application; ``status`` is ``unconfirmed`` until its confirmation link is used.

    ``client_key``/``email_key`` are SHA-256 digests (of the client address and the lower-cased
    e-mail) used only for the abuse limits, so the rate-limit look-ups need no personal data in
    clear. ``body`` holds what the applicant sent (type, visibility, payload); it is emptied when the
    record it became is erased.
    """

    id = fields.CharField(pk=True, max_length=36)
    status = fields.CharField(max_length=16, default="unconfirmed")
    created_at = fields.CharField(max_length=20, db_index=True)
    confirmed_at = fields.CharField(max_length=20, null=True)
    client_key = fields.CharField(max_length=64, db_index=True)
    email_key = fields.CharField(max_length=64, db_index=True)
    name = fields.CharField(max_length=200)
    email = fields.CharField(max_length=254)
    visibility = fields.CharField(max_length=8)
    body = fields.TextField()
    record_id = fields.CharField(max_length=120, null=True, db_index=True)
    #: A registered member's proposed new payload (JSON), waiting for an assessor (manage link).
    proposal = fields.TextField(null=True)
    proposed_at = fields.CharField(max_length=20, null=True)

    class Meta:
        table = "applications"


class VersionEvent(Model):
    """Who caused one version of a record, the decision (if any), its ground and note, what changed."""

    id = fields.BigIntField(pk=True)
    record_id = fields.CharField(max_length=120, db_index=True)
    version = fields.BigIntField()
    at = fields.CharField(max_length=20)
    actor = fields.CharField(max_length=200)
    actor_kind = fields.CharField(max_length=16)  # user | applicant | import | system
    decision = fields.CharField(max_length=16, null=True)
    ground = fields.CharField(max_length=64, null=True)
    note = fields.TextField(null=True)
    changed = fields.TextField(default="[]")  # JSON list of JSON pointers

    class Meta:
        table = "version_events"
        unique_together = (("record_id", "version"),)


class MailMessage(Model):
    """A queued mail. ``state``: pending (to send, at ``next_attempt_at``) or sent (body dropped)."""

    id = fields.BigIntField(pk=True)
    kind = fields.CharField(max_length=16, db_index=True)  # confirm | manage | decision | assessor | received
    created_at = fields.CharField(max_length=20, db_index=True)
    to_name = fields.CharField(max_length=200, default="")
    to_addr = fields.CharField(max_length=254)
    subject = fields.CharField(max_length=300)
    body = fields.TextField()
    state = fields.CharField(max_length=8, default="pending", db_index=True)
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.CharField(max_length=20)
    last_error = fields.CharField(max_length=300, null=True)
    sent_at = fields.CharField(max_length=20, null=True)
    record_id = fields.CharField(max_length=120, null=True, db_index=True)
    application_id = fields.CharField(max_length=36, null=True)

    class Meta:
        table = "mail_outbox"
