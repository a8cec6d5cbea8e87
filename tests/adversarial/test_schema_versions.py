"""Schemas evolve without a flag day (DESIGN §11), hub side: the hub validates each record against the
version its envelope names and accepts organisation/1 and organisation/2 side by side; its signed
directory lists what it accepts. (Node side: tests/integration/test_schema_versions.py.)
"""

from __future__ import annotations

import pytest

from federation.directory import verify_directory
from tests.adversarial.conftest import Hub, MakeFakeNode, org_payload

SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
FORM = {"general_email": "info@cyberlab.example", "phone": "+49 30 1234567",
        "headquarters": {"is_headquarters": False, "parent": "Cyber Holding AG (AT)"},
        "subsidiaries": {"in_other_member_states": True, "list": ["Cyber Lab SARL (FR)"]},
        "majority_owned_outside_eu": {"value": True, "details": "Owned by a fund established in CH"},
        "exclusion_declaration": True}


@SQLITE
async def test_hub_accepts_organisation_1_and_2_side_by_side(hub: Hub, fake_node: MakeFakeNode) -> None:
    de = await fake_node("DE")
    v1 = de.record(payload=org_payload("DE", legal_name="Version One GmbH"))
    v2_fields = de.fields(payload=org_payload("DE", legal_name="Version Two GmbH", **FORM))
    v2 = de.sign({**v2_fields, "schema": "organisation/2"})
    v2_minimal = de.sign({**de.fields(payload=org_payload("DE")), "schema": "organisation/2"})
    # /2 fields under a /1 label: validated against what the envelope names, so refused
    mislabelled = de.record(payload=org_payload("DE", legal_name="Mislabelled GmbH", **FORM))
    unknown = de.sign({**de.fields(payload=org_payload("DE")), "schema": "organisation/3"})
    de.serve(v1, v2, v2_minimal, mislabelled, unknown)
    result = await hub.sync()
    assert result["DE"]["ok"] is True, result
    held = await hub.held()
    assert {v1["id"], v2["id"], v2_minimal["id"]} <= set(held)
    assert mislabelled["id"] not in held and unknown["id"] not in held
    refused = {item["record_id"]: item["code"] for item in await hub.quarantine("DE")}
    assert refused == {mislabelled["id"]: "schema_invalid", unknown["id"]: "schema_invalid"}
    # the analyst reads the /2 record exactly as signed; search finds both versions
    resp = await hub.client.get(f"/api/v1/records/{v2['id']}", headers=hub.instance.auth("analyst"))
    assert resp.status == 200 and await resp.json() == v2
    assert {v1["id"], v2["id"]} <= await hub.searchable()


@SQLITE
async def test_directory_lists_the_schemas_the_hub_accepts(hub: Hub) -> None:
    resp = await hub.client.get("/federation/v1/directory")
    assert resp.status == 200
    doc = await resp.json()
    directory = verify_directory(doc, hub.clock())
    assert directory.schemas == ("expert/1", "facility/1", "organisation/1", "organisation/2", "project/1")
    assert directory.accepts("organisation/2") and not directory.accepts("organisation/3")


@SQLITE
async def test_an_upgraded_hub_publishes_a_directory_with_its_schemas(hub: Hub) -> None:
    """A directory signed before this version (no ``schemas``) is replaced at the next read."""
    import orjson

    from federation.directory import sign_directory
    from node.storage.hub_models import DirectoryDoc

    before = await hub.context.hub.current_directory()
    old = {k: v for k, v in before.items() if k not in ("schemas", "sig")}
    old["serial"] = before["serial"] + 1
    key = hub.context.keyring.key()
    old_doc = sign_directory(old, key.private_key, key.kid)
    await DirectoryDoc.create(serial=old["serial"], issued_at=old["issued_at"], document=orjson.dumps(old_doc).decode())
    after = await hub.context.hub.current_directory()
    assert after["serial"] == old["serial"] + 1 and "organisation/2" in after["schemas"]
