"""Tortoise models for both roles.

Node side: ``Record`` (current state of each record this node owns), ``RecordVersion`` (every signed
version, with the node-local sequence number assigned in the write's transaction), ``FeedEntry``
(the latest shareable envelope per record: what the change feed streams), ``Counter`` (sequence
allocation), ``ApiToken`` (issued user tokens, for revocation), ``SeenJti`` (service-token replay
protection), ``PortalSession`` (signed-in portal sessions), ``NodeState`` (enrollment and notification state).

Hub side: ``FederatedNode``/``NodeKey`` (the directory's content), ``DirectoryDoc`` (each signed
directory), ``Invite`` (single-use enrollment tokens), ``HubRecord`` (the index of verified
records), ``Quarantine`` (rejected records with their code), ``PullState`` (cursor and staleness).
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Counter(Model):
    """Named monotonically increasing counters (the node-local change sequence)."""

    name = fields.CharField(pk=True, max_length=32)
    value = fields.BigIntField(default=0)

    class Meta:
        table = "counters"


class Record(Model):
    """Current state of a record owned by this node."""

    id = fields.CharField(pk=True, max_length=120)
    type = fields.CharField(max_length=16, db_index=True)
    origin = fields.CharField(max_length=2)
    version = fields.BigIntField()
    visibility = fields.CharField(max_length=72)  # 0016: group:<name>
    deleted = fields.BooleanField(default=False)
    seq = fields.BigIntField(db_index=True)
    issued_at = fields.CharField(max_length=20)
    envelope = fields.TextField()

    class Meta:
        table = "records"


class RecordVersion(Model):
    """Every signed version of every record, in sequence order.

    ``envelope`` is NULL once an ``erased`` tombstone purged it (GDPR Art. 17); ``digest`` stays as
    evidence of what was published.
    """

    id = fields.BigIntField(pk=True)
    record_id = fields.CharField(max_length=120, db_index=True)
    version = fields.BigIntField()
    seq = fields.BigIntField(unique=True)
    visibility = fields.CharField(max_length=72)  # 0016: group:<name>
    deleted = fields.BooleanField(default=False)
    issued_at = fields.CharField(max_length=20)
    digest = fields.CharField(max_length=64)
    envelope = fields.TextField(null=True)

    class Meta:
        table = "record_versions"
        unique_together = (("record_id", "version"),)


class FeedEntry(Model):
    """The latest shareable (non-national) version of each record, keyed by its sequence."""

    record_id = fields.CharField(pk=True, max_length=120)
    seq = fields.BigIntField(unique=True)
    envelope = fields.TextField()

    class Meta:
        table = "feed"


class FeedWithdrawal(Model):
    """The ``withdrawn`` tombstone the feed published when a record turned national (migration 0008).

    That face lives in the feed only until the record is shared again, and ``record_versions`` holds
    the node's national version instead; kept here so the node can still tell the hub, after the
    feed moved on, that it holds what the hub ingested at that sequence (the divergence check).
    """

    seq = fields.BigIntField(pk=True)
    record_id = fields.CharField(max_length=120, db_index=True)
    version = fields.BigIntField()
    digest = fields.CharField(max_length=64)

    class Meta:
        table = "feed_withdrawals"


class ApiToken(Model):
    """A user token issued by the ncc token create command (the JWT itself is not stored)."""

    jti = fields.CharField(pk=True, max_length=64)
    role = fields.CharField(max_length=16)
    subject = fields.CharField(max_length=200)
    created_at = fields.CharField(max_length=20)
    expires_at = fields.CharField(max_length=20)
    revoked_at = fields.CharField(max_length=20, null=True)
    #: 0016: hub analysts' sharing groups (DESIGN §15), sorted and comma-separated; the row decides.
    groups = fields.TextField(null=True)
    # The kid of the key that signed it (0011): a retired key verifies only the tokens it signed.
    kid = fields.CharField(max_length=40, null=True)

    class Meta:
        table = "api_tokens"


class SeenJti(Model):
    """Service-token ids already used, kept until the token would have expired."""

    jti = fields.CharField(pk=True, max_length=128)
    expires_at = fields.BigIntField(db_index=True)

    class Meta:
        table = "seen_jtis"


class PortalSession(Model):
    """A signed-in portal session (0011). The cookie holds a random id; only its SHA-256 is stored,
    so a copy of the database does not sign anyone in. Logging out deletes the row."""

    id_hash = fields.CharField(pk=True, max_length=64)
    jti = fields.CharField(max_length=64, db_index=True)
    created_at = fields.CharField(max_length=20)
    expires_at = fields.BigIntField(db_index=True)

    class Meta:
        table = "portal_sessions"


class NodeState(Model):
    """Small key/value state of this instance (enrollment, pending notifications, hub directory)."""

    key = fields.CharField(pk=True, max_length=64)
    value = fields.TextField()

    class Meta:
        table = "node_state"


class AtlasSync(Model):
    """Where a registered organisation stands in the ECCC Atlas (outside the signed envelope).

    ``state``: ``pending`` (to be pushed), ``synced`` (the Atlas holds what we last sent),
    ``conflict`` (changed at the Atlas since our last push: not overwritten), ``failed`` (with
    ``reason``), ``reported`` (revoked or erased here: the Atlas operator is told, nothing deleted
    remotely). ``pushed_digest`` is the SHA-256 of the resource last sent, so an unchanged record
    sends nothing; ``remote_changed`` the Atlas's ``changed`` after that push, for conflict detection.
    """

    record_id = fields.CharField(pk=True, max_length=120)
    atlas_uuid = fields.CharField(max_length=64, null=True)
    state = fields.CharField(max_length=16, default="pending")
    reason = fields.TextField(null=True)
    last_push = fields.CharField(max_length=20, null=True)
    remote_changed = fields.CharField(max_length=64, null=True)
    pushed_digest = fields.CharField(max_length=64, null=True)
    pushed_version = fields.BigIntField(null=True)

    class Meta:
        table = "atlas_sync"


class Erasure(Model):
    """A record erased under GDPR Art. 17 (an ``erased`` tombstone written here or ingested by the hub).

    The purge job (:mod:`node.services.erasure`) removes what remains of the record's payloads on
    disk and then sets ``purged_at``; the row holds no personal data (the id is a random URN).
    """

    record_id = fields.CharField(pk=True, max_length=120)
    version = fields.BigIntField()
    erased_at = fields.CharField(max_length=20)
    purged_at = fields.CharField(max_length=20, null=True, db_index=True)

    class Meta:
        table = "erasures"
