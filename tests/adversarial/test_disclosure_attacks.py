"""Disclosure regressions (issue 12, DESIGN §11): what an anonymous reader could see of a public record.

Found by the issue's audit: a public organisation showed anonymous readers its VAT and registration
numbers, its address, the assessing officer's name and the revocation ground, and a search for any
of them found it. Fixed by default-deny disclosure from the schemas (``x-ncc-public``,
``federation/schemas.py:disclose``), one access policy (``node/access.py``) and search documents with
a restricted part anonymous queries never match (``node/search/documents.py``). Each case reads the
same record through the real pull at the hub (and the API at the node) anonymously and as an analyst.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.adversarial.conftest import Hub, MakeFakeNode, org_payload
from tests.integration.support import Instance

VAT = "DE811907980"
REGISTRATION = "HRB 4711 Zwickau"
STREET = "Wombatgasse 17"
OFFICER = "Officer Brandlhuber"
GROUND = "security-reasons"
CONTACT = {"first_name": "Xaveria", "family_name": "Quenzelmann", "email": "xq@lab.example.de"}

#: case -> (payload changes, the value that must not reach anonymous readers, a word to search for)
CASES: dict[str, tuple[dict[str, Any], str, str]] = {
    "vat_number": ({"identifiers": {"vat": VAT}}, VAT, VAT),
    "registration_number": ({"identifiers": {"registration_number": REGISTRATION}}, REGISTRATION, "4711"),
    "address": ({"address": {"street": STREET, "postcode": "08056", "city": "Quokkastadt", "country": "DE"}},
                STREET, "Wombatgasse"),
    "assessed_by": ({"membership": {"status": "registered", "assessed_at": "2026-01-02T03:04:05Z",
                                    "assessed_by": OFFICER}}, OFFICER, "Brandlhuber"),
    "revocation_ground": ({"membership": {"status": "revoked", "assessed_at": "2026-01-02T03:04:05Z",
                                          "ground": GROUND}}, GROUND, GROUND),
    "contact_name": ({"contact": CONTACT}, "Quenzelmann", "Quenzelmann"),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_regression_hub_anonymous_reader_never_sees_network_only_fields(
    case: str, hub: Hub, fake_node: MakeFakeNode
) -> None:
    changes, secret, word = CASES[case]
    de = await fake_node("DE")
    record = de.record(payload=org_payload("DE", **changes))
    de.serve(record)
    assert (await hub.sync())["DE"]["ok"]
    rid = record["id"]

    anonymous = await hub.client.get(f"/api/v1/records/{rid}")
    assert anonymous.status == 200
    text = await anonymous.text()
    assert secret not in text and "sig" not in (await anonymous.json())
    assert (await anonymous.json())["redacted"], "the reader is told fields were withheld"
    page = await hub.client.get(f"/records/{rid}")
    assert secret not in await page.text()
    found = await (await hub.client.get("/api/v1/search", params={"q": word})).json()
    assert found["total"] == 0 and found["results"] == []
    listing = await hub.client.get("/api/v1/search", params={"q": "cryptography"})
    assert rid in {r["id"] for r in (await listing.json())["results"]} and secret not in await listing.text()

    analyst = hub.instance.auth("analyst")
    whole = await (await hub.client.get(f"/api/v1/records/{rid}", headers=analyst)).json()
    assert whole == record  # exactly as signed
    found = await (await hub.client.get("/api/v1/search", params={"q": word}, headers=analyst)).json()
    assert [r["id"] for r in found["results"]] == [rid]
    assert any(part in found["results"][0]["snippet"] for part in word.split())


@pytest.mark.parametrize("case", sorted(CASES))
async def test_regression_node_anonymous_reader_never_sees_network_only_fields(
    case: str, client: TestClient[Any, Any], node: Instance
) -> None:
    changes, secret, word = CASES[case]
    # an admin writes it (membership is set by assessment or an admin, never an editor: DESIGN §12)
    resp = await client.post("/api/v1/records", json={"type": "organisation", "payload": org_payload("DE", **changes)},
                             headers=node.auth("admin"))
    assert resp.status == 201, await resp.text()
    rid = (await resp.json())["id"]
    for path in (f"/api/v1/records/{rid}", "/api/v1/records", f"/records/{rid}", "/?q=cryptography"):
        got = await client.get(path)
        assert got.status == 200 and secret not in await got.text(), path
    found = await (await client.get("/api/v1/search", params={"q": word})).json()
    assert found["total"] == 0
    found = await (await client.get("/api/v1/search", params={"q": word}, headers=node.auth("reader"))).json()
    assert [r["id"] for r in found["results"]] == [rid]
