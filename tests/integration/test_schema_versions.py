"""Schemas evolve without a flag day (DESIGN §11), node side: ``organisation/2`` is written only once the
hub's directory lists it; until then the node writes ``organisation/1`` and refuses /2-only fields with a
clear 422. (Hub side, both versions accepted side by side: tests/adversarial/test_schema_versions.py.)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

from federation.directory import KeyEntry, build_directory, sign_directory
from federation.keys import generate_private_key, kid_for, public_key_raw
from node.http.keys import CONTEXT
from tests.integration.support import Instance

SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
MINIMAL = {"legal_name": "Cyber Lab GmbH", "country": "DE", "org_type": "ctype.industry-sme",
           "fields_of_activity": ["foa.academia-research-innovation"], "domains": ["cry"], "subdomains": ["cry.10"],
           "description": "Post-quantum cryptography for energy grids."}
FORM = {"general_email": "info@cyberlab.example", "headquarters": {"is_headquarters": True},
        "exclusion_declaration": True}


def hub_directory(schemas: list[str] | None) -> dict[str, Any]:
    """A signed directory as the node would hold it (``schemas`` None: an older hub's, without the field)."""
    key = generate_private_key()
    kid = kid_for("hub", public_key_raw(key))
    now = datetime.now(UTC).replace(microsecond=0)
    entry = KeyEntry(kid, public_key_raw(key), now - timedelta(days=1))
    unsigned = build_directory(1, now, now + timedelta(days=1), "https://hub.example.eu", [entry], [], schemas=schemas)
    return sign_directory(unsigned, key, kid)


async def hold(client: TestClient[Any, Any], directory: dict[str, Any]) -> None:
    from node.storage.models import NodeState

    await NodeState.update_or_create(key="hub_directory", defaults={"value": orjson.dumps(directory).decode()})
    await client.app[CONTEXT].publisher.schemas.refresh(force=True)  # else within 5 s


async def post(client: TestClient[Any, Any], node: Instance, payload: dict[str, Any]) -> tuple[int, Any]:
    resp = await client.post("/api/v1/records", json={"type": "organisation", "visibility": "public",
                                                      "payload": payload}, headers=node.auth("editor"))
    return resp.status, await resp.json()


@SQLITE
async def test_node_writes_organisation_2_only_once_the_hub_lists_it(client: TestClient[Any, Any],
                                                                     node: Instance) -> None:
    # not enrolled: organisation/1, and the /2 fields are refused with the reason
    status, body = await post(client, node, {**MINIMAL, **FORM})
    assert status == 422 and body["code"] == "schema_invalid"
    assert "needs organisation/2, which the hub does not accept yet" in body["detail"]
    assert {e["pointer"] for e in body["errors"]} == {"/payload/general_email", "/payload/headquarters",
                                                      "/payload/exclusion_declaration"}
    status, old = await post(client, node, MINIMAL)
    assert status == 201 and old["schema"] == "organisation/1"
    # an older hub's directory (no `schemas`): still version 1
    await hold(client, hub_directory(None))
    assert (await post(client, node, {**MINIMAL, **FORM}))[0] == 422
    # the hub lists organisation/2: new records and new versions of old ones are written with it
    await hold(client, hub_directory(["expert/1", "facility/1", "organisation/1", "organisation/2", "project/1"]))
    status, new = await post(client, node, {**MINIMAL, **FORM})
    assert status == 201 and new["schema"] == "organisation/2" and new["payload"]["general_email"]
    resp = await client.put(f"/api/v1/records/{old['id']}", json={"payload": {**MINIMAL, **FORM}, "version": 1},
                            headers=node.auth("editor"))
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["schema"] == "organisation/2"
    # a tombstone names the schema of the version it ends
    resp = await client.delete(f"/api/v1/records/{new['id']}?reason=withdrawn", headers=node.auth("editor"))
    assert resp.status == 200 and (await resp.json())["schema"] == "organisation/2"
    # other types stay at version 1
    expert = {"name": "Erika Muster", "country": "DE"}
    resp = await client.post("/api/v1/records", json={"type": "expert", "visibility": "national", "payload": expert},
                             headers=node.auth("editor"))
    assert resp.status == 201 and (await resp.json())["schema"] == "expert/1"
    # a hub that stops listing /2 (rolled back): the node goes back to /1 for its next writes
    await hold(client, hub_directory(["organisation/1"]))
    status, body = await post(client, node, {**MINIMAL, **FORM})
    assert status == 422 and "organisation/2" in body["detail"]
    assert (await post(client, node, MINIMAL))[1]["schema"] == "organisation/1"
