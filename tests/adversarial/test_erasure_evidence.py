"""Erasure reaches the hub's quarantine (DESIGN §11): evidence about an erased record is purged.

The fake node first sends versions the hub refuses (kept as quarantine evidence, payload included,
since the record is public), then erases the record. After the pull, the purge job
(``node.services.erasure.purge``, run here directly) deletes every quarantine row about the id —
also a garbage line that named it without parsing — and nothing of the payload is left in the
database (on SQLite: not in any file either, see tests/e2e/test_erasure.py for the byte scan).
"""

from __future__ import annotations

import pytest

from node.services.erasure import pending, purge
from tests.adversarial.conftest import Hub, MakeFakeNode, org_payload

BOTH = pytest.mark.parametrize(
    "db_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@BOTH
async def test_purge_deletes_quarantine_evidence_of_an_erased_record(hub: Hub, fake_node: MakeFakeNode) -> None:
    de = await fake_node("DE")
    good = de.record(payload=org_payload("DE", legal_name="Quarantinewort GmbH"))
    tampered = de.record(uuid=good["id"].rsplit(":", 1)[1], version=2,
                         payload=org_payload("DE", legal_name="Quarantinewort GmbH", description="Tampered later."))
    tampered["payload"]["legal_name"] = "Quarantinewort AG"  # signature_invalid: evidence keeps the payload
    other = de.record(payload=org_payload("DE", legal_name="Unrelated Quarantined GmbH"))
    other["payload"]["legal_name"] = "Unrelated Tampered GmbH"
    de.serve(good, tampered, other)
    de.serve_line(b'{"seq":' + str(de.head + 1).encode() + b',"record":{"id":"' + good["id"].encode()
                  + b'","payload":"Quarantinewort"')  # not JSON: kept without a record id
    await hub.sync()
    assert len(await hub.quarantine("DE")) == 3
    erased = de.record(uuid=good["id"].rsplit(":", 1)[1], version=3, deleted=True, payload={"reason": "erased"})
    de.serve(erased)
    await hub.sync()
    assert [rid for rid, _ in await pending()] == [good["id"]]
    # On PostgreSQL a run waits (bounded) for older transactions anywhere on the server to end, else it
    # leaves the erasure pending for the next run: on a busy shared test server that may take a few runs.
    removed, done = 0, 0
    for _ in range(6):
        report = await purge(hub.context.search, hub.clock())
        removed, done = removed + report.quarantine_rows, report.erasures
        if done:
            break
    assert done == 1 and removed == 2
    left = await hub.quarantine("DE")
    assert [item["record_id"] for item in left] == [other["id"]]  # evidence about other records stays
    assert await pending() == []
    from node.storage.hub_models import HubRecord, Quarantine

    for row in await Quarantine.all():
        assert "Quarantinewort" not in row.envelope
    held = await HubRecord.get(id=good["id"])
    assert held.deleted and "Quarantinewort" not in held.envelope
    # nothing pending: the next run does nothing
    assert (await purge(hub.context.search, hub.clock())).erasures == 0
