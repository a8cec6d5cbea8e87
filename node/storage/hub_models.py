"""Tortoise models of the hub role (added by migration 0002)."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class FederatedNode(Model):
    """An enrolled node, as listed in the directory."""

    country = fields.CharField(pk=True, max_length=2)
    url = fields.CharField(max_length=500)
    status = fields.CharField(max_length=16, default="active")
    mode = fields.CharField(max_length=16, default="replicate")
    enrolled_at = fields.CharField(max_length=20)

    class Meta:
        table = "hub_nodes"


class NodeKey(Model):
    """A node's signing key with its validity window."""

    kid = fields.CharField(pk=True, max_length=40)
    country = fields.CharField(max_length=2, db_index=True)
    public_key = fields.CharField(max_length=64)
    not_before = fields.CharField(max_length=20)
    not_after = fields.CharField(max_length=20, null=True)
    revoked_at = fields.CharField(max_length=20, null=True)

    class Meta:
        table = "hub_node_keys"


class DirectoryDoc(Model):
    """Every directory the hub signed; the highest serial is current."""

    serial = fields.BigIntField(pk=True)
    issued_at = fields.CharField(max_length=20)
    document = fields.TextField()
    #: 0016: the same serial signed without ``groups``, for anonymous readers (DESIGN §15).
    public_document = fields.TextField(null=True)

    class Meta:
        table = "hub_directories"


class Invite(Model):
    """A one-time enrollment token (by its jti)."""

    jti = fields.CharField(pk=True, max_length=64)
    country = fields.CharField(max_length=2)
    created_at = fields.CharField(max_length=20)
    expires_at = fields.CharField(max_length=20)
    used_at = fields.CharField(max_length=20, null=True)
    # 0011: made with `--replace` for an enrolled country (else refused once the country is enrolled),
    # and cancelled by `ncc hub invites cancel`.
    replace = fields.BooleanField(default=False)
    cancelled_at = fields.CharField(max_length=20, null=True)

    class Meta:
        table = "hub_invites"


class HubRecord(Model):
    """A verified record held by the hub, exactly as its origin signed it."""

    id = fields.CharField(pk=True, max_length=120)
    origin = fields.CharField(max_length=2, db_index=True)
    type = fields.CharField(max_length=16)
    version = fields.BigIntField()
    visibility = fields.CharField(max_length=72)  # 0016: group:<name>
    deleted = fields.BooleanField(default=False)
    digest = fields.CharField(max_length=64)
    issued_at = fields.CharField(max_length=20)
    envelope = fields.TextField()
    node_seq = fields.BigIntField()
    quarantined = fields.BooleanField(default=False)
    #: When the hub first received this version (DESIGN §10: judged against its key's validity).
    received_at = fields.CharField(max_length=20, null=True, default="")

    class Meta:
        table = "hub_records"


class HubGroup(Model):
    """A sharing group (DESIGN §15): its member countries, sorted and comma-separated."""

    name = fields.CharField(pk=True, max_length=63)
    countries = fields.TextField()
    created_at = fields.CharField(max_length=20)

    class Meta:
        table = "hub_groups"

    @property
    def members(self) -> frozenset[str]:
        return frozenset(c for c in self.countries.split(",") if c)


class Quarantine(Model):
    """A record the hub refused, with its code and the raw envelope as received."""

    id = fields.BigIntField(pk=True)
    country = fields.CharField(max_length=2, db_index=True)
    record_id = fields.CharField(max_length=200, null=True)
    version = fields.BigIntField(null=True)
    node_seq = fields.BigIntField(null=True)
    code = fields.CharField(max_length=40)
    detail = fields.TextField()
    envelope = fields.TextField()
    received_at = fields.CharField(max_length=20)
    #: Size and SHA-256 of the whole line; ``envelope`` keeps at most its first 64 KiB.
    evidence_bytes = fields.BigIntField(null=True, default=0)
    evidence_sha256 = fields.CharField(max_length=64, null=True, default="")

    class Meta:
        table = "hub_quarantine"


class PullState(Model):
    """Per node: the feed cursor (advanced in the ingest transaction), staleness and the pull lease."""

    country = fields.CharField(pk=True, max_length=2)
    cursor = fields.BigIntField(default=0)
    head = fields.BigIntField(default=0)
    last_success = fields.CharField(max_length=20, null=True)
    last_attempt = fields.CharField(max_length=20, null=True)
    consecutive_failures = fields.IntField(default=0)
    last_error = fields.TextField(null=True)
    lease_owner = fields.CharField(max_length=64, null=True)
    lease_until = fields.BigIntField(default=0)
    #: Unix time from which a failing node is pulled again (migration 0018): written by whichever
    #: process recorded the failure (the serving hub or ``ncc sync``), read by the serving hub's retries.
    retry_at = fields.BigIntField(default=0)
    # The last record ingested from the node (migration 0008): checked before every pull, so that a
    # node restored from a backup is caught before anything of it is ingested (DESIGN §11).
    anchor_seq = fields.BigIntField(null=True)
    anchor_id = fields.CharField(max_length=120, null=True)
    anchor_version = fields.BigIntField(null=True)
    anchor_digest = fields.CharField(max_length=64, null=True)
    #: Set while the node does not hold the anchor (status ``diverged``); cleared by ``ncc recover``.
    diverged_at = fields.CharField(max_length=20, null=True)
    diverged_reason = fields.TextField(null=True)
    #: Feed epoch: +1 each time the cursor restarts from 0 (a new instance enrolled, a recovery).
    epoch = fields.IntField(default=0)
    #: The node instance's id sent at enrollment (a different one on re-enrollment: a new epoch).
    instance = fields.CharField(max_length=64, null=True)

    class Meta:
        table = "hub_pull_state"


class LogEntry(Model):
    """One entry of the hub's transparency log (DESIGN §14): a record version or a directory.

    ``entry`` is the exact JCS text hashed into the leaf; ``visibility`` is the record's when it was
    logged (anonymous readers see the entries of public records only); directory entries have no
    record and are public.
    """

    index = fields.BigIntField(pk=True)
    origin = fields.CharField(max_length=2, null=True, db_index=True)
    record_id = fields.CharField(max_length=120, null=True)
    version = fields.BigIntField(null=True)
    visibility = fields.CharField(max_length=72)  # 0016: group:<name>
    entry = fields.TextField()

    class Meta:
        table = "hub_log"
        unique_together = (("record_id", "version"),)


class LogNode(Model):
    """The hash of a perfect subtree of the log, stored once when it completes (``federation.merkle``):
    ``key = level << 56 | index``; level 0 holds the leaf hashes."""

    key = fields.BigIntField(pk=True)
    hash = fields.CharField(max_length=64)

    class Meta:
        table = "hub_log_nodes"


class LogState(Model):
    """The log's size, right edge (frontier hashes, hex, largest subtree first) and latest signed head.
    One row (``id = 1``), locked by every append."""

    id = fields.IntField(pk=True)
    size = fields.BigIntField(default=0)
    frontier = fields.TextField(default="[]")
    head = fields.TextField(null=True)

    class Meta:
        table = "hub_log_state"
