"""Leak suite (DESIGN §11, issue 12): anonymous readers see only the fields the schema marks public.

Each record type is created with every field filled, with distinctive values; then every anonymous
read path of the node and of the hub — record pages (API and portal), record lists, search results,
snippets and facets, the portal's search and status pages, and the ``redacted`` list — is checked
for the value of any field the schema does not mark ``x-ncc-public``: none may appear. Privileged
readers (node users, hub analysts) still see and find them.
"""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient
from tortoise.connection import connections

import schemas
from federation.envelope import sign_record
from federation.keys import generate_private_key, kid_for, public_key_raw
from federation.schemas import Annotations, disclose, schema_id_for
from node.search import document_from_envelope
from node.search.text import tokens
from node.services.search import SearchService
from node.storage.hub_models import HubRecord
from tests.integration.conftest import ClientFactory, MakeInstance
from tests.integration.support import Instance

Client = TestClient[Any, Any]
NOTES = Annotations.of(schemas.load_schema_documents())


def example(rtype: str) -> dict[str, Any]:
    return dict(json.loads((schemas.SCHEMA_DIR / "examples" / f"{rtype}.json").read_text(encoding="utf-8")))


def full_payload(rtype: str, country: str = "AT") -> dict[str, Any]:
    """Every field of the type filled, the non-public ones with values found nowhere else."""
    payload = example(rtype)
    if "country" in payload:
        payload["country"] = country
    if isinstance(payload.get("location"), dict):
        payload["location"]["country"] = country
    if rtype == "organisation":
        payload["identifiers"] = {"pic": "987654321", "vat": "ATU99887766", "ror": "https://ror.org/04kq7r203",
                                  "registration_number": "FN 4711zq"}
        payload["address"] = {"street": "Wombatgasse 17", "postcode": "1090", "city": "Quokkastadt",
                               "country": "FR"}
        payload["contact"] = {"first_name": "Xaveria", "family_name": "Quenzelmann",
                              "email": "xq.secret@oeik.example.at", "position": "Chief Ocelot",
                              "phone": "+43 1 5550199"}
        payload["membership"] = {"status": "revoked", "assessed_at": "2025-04-05T06:07:08Z",
                                 "assessed_by": "Officer Brandlhuber", "ground": "security-reasons"}
    elif rtype == "expert":
        payload["email"] = "zoe.hiddenmail@example.ie"
        payload["orcid"] = "0000-0002-1694-233X"
    elif rtype == "facility":
        payload["contact"] = {"first_name": "Bohumilka", "family_name": "Zlatoroh",
                              "email": "bz.secret@kyberpolygon.example.cz", "position": "Range ocelot",
                              "phone": "+420 555 010 199"}
    return payload


def _leaves(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    return []


def secrets_of(rtype: str, payload: dict[str, Any], titles: bool = True) -> list[str]:
    """The string values of the fields not marked public (those also public elsewhere left out)."""
    public_ptrs = NOTES.public_pointers(schema_id_for(f"{rtype}/1"))
    shown, _, hidden = disclose(payload, public_ptrs)
    public_text = orjson.dumps(shown).decode() + " public network national"
    found = [leaf for leaf in _leaves(hidden) if len(leaf) >= 4 and leaf not in public_text]
    if rtype == "organisation" and titles:
        found.append("Justified security reasons")  # the revocation ground's title
    return found


def expected_redacted(rtype: str, payload: dict[str, Any]) -> list[str]:
    _, removed, _ = disclose(payload, NOTES.public_pointers(schema_id_for(f"{rtype}/1")))
    return [f"/payload{p}" for p in removed]


def assert_clean(text: str, secrets: list[str], where: str) -> None:
    leaked = [s for s in secrets if s in text or json.dumps(s)[1:-1] in text]
    assert not leaked, f"{where} shows {leaked}"


def test_every_type_has_secrets_to_look_for() -> None:
    """The suite is only as good as its values: every type but projects has non-public fields set."""
    for rtype in schemas.RECORD_TYPES:
        secrets = secrets_of(rtype, full_payload(rtype))
        assert bool(secrets) == (rtype != "project"), (rtype, secrets)
    org = full_payload("organisation")
    assert {"ATU99887766", "FN 4711zq", "Wombatgasse 17", "Officer Brandlhuber", "security-reasons",
            "Xaveria"} <= set(secrets_of("organisation", org))
    assert {"atu99887766", "4711zq", "wombatgasse", "brandlhuber", "quenzelmann"} <= set(
        search_words("organisation", org, secrets_of("organisation", org)))


def search_words(rtype: str, payload: dict[str, Any], secrets: list[str]) -> list[str]:
    """Query words found only in non-public fields (one per secret where it has one), to search for
    each alone: a word the public part also holds (a vocabulary label, say) would rightly match."""
    doc = document_from_envelope({"id": "urn:x", "type": rtype, "schema": f"{rtype}/1", "origin": "AT",
                                  "visibility": "public", "version": 1, "issued_at": "2026-01-01T00:00:00Z",
                                  "payload": payload}, schemas.load_vocabularies())
    assert doc is not None
    public = set(tokens(doc.title + " " + doc.text))
    words = []
    for secret in secrets:
        runs = [w for w in tokens(secret) if len(w) >= 4 and w not in public]
        if runs:
            words.append(max(runs, key=len))
    return list(dict.fromkeys(words))


async def _anonymous_paths(client: Client, rid: str, rtype: str, payload: dict[str, Any]) -> None:
    secrets = secrets_of(rtype, payload)
    resp = await client.get(f"/api/v1/records/{rid}")
    assert resp.status == 200
    body = await resp.json()
    assert "sig" not in body
    assert body["redacted"] == expected_redacted(rtype, payload)
    assert_clean(await resp.text(), secrets, f"GET /api/v1/records/{rid}")
    for path in (f"/records/{rid}", "/", f"/?type={rtype}", "/?q=" + payload.get("description", "x").split()[0],
                 "/status"):
        resp = await client.get(path)
        if resp.status == 404 and path == "/status":  # hub only
            continue
        assert resp.status == 200, path
        assert_clean(await resp.text(), secrets, path)
    for query in ("", f"type={rtype}", "q=" + (payload.get("description") or payload.get("objective", "x")).split()[0]):
        resp = await client.get(f"/api/v1/search?{query}")
        assert resp.status == 200
        found = await resp.json()
        assert rid in [h["id"] for h in found["results"]], query
        assert_clean(await resp.text(), secrets, f"search {query!r}")
    for word in search_words(rtype, payload, secrets):
        found = await (await client.get("/api/v1/search", params={"q": word})).json()
        assert found["total"] == 0 and found["results"] == [], f"anonymous search for {word!r} found {found}"
        assert all(not counts for counts in found["facets"].values()), word
        text = await (await client.get("/", params={"q": word})).text()
        assert f"/records/{rid}" not in text, word


async def _privileged_paths(client: Client, rid: str, rtype: str, payload: dict[str, Any],
                            headers: dict[str, str]) -> None:
    secrets = secrets_of(rtype, payload, titles=False)
    body = await (await client.get(f"/api/v1/records/{rid}", headers=headers)).json()
    assert body["payload"] == payload and "sig" in body and "redacted" not in body
    for word in search_words(rtype, payload, secrets):
        found = await (await client.get("/api/v1/search", params={"q": word}, headers=headers)).json()
        assert rid in [h["id"] for h in found["results"]], f"{word!r} not found for a privileged reader"


@pytest.mark.parametrize("rtype", schemas.RECORD_TYPES)
async def test_node_anonymous_paths_show_only_public_fields(client: Client, node: Instance, rtype: str) -> None:
    payload = full_payload(rtype, "DE")
    # an admin writes it: the full payload carries membership, which editors may not set (DESIGN §12)
    resp = await client.post("/api/v1/records", json={"type": rtype, "visibility": "public", "payload": payload},
                             headers=node.auth("admin"))
    assert resp.status == 201, await resp.text()
    rid = (await resp.json())["id"]
    await _anonymous_paths(client, rid, rtype, payload)
    listed = await client.get("/api/v1/records")
    assert_clean(await listed.text(), secrets_of(rtype, payload), "GET /api/v1/records")
    assert [r["redacted"] for r in (await listed.json())["records"]] == [expected_redacted(rtype, payload)]
    for role in ("reader", "editor"):
        await _privileged_paths(client, rid, rtype, payload, node.auth(role))
    page = await (await client.get(f"/records/{rid}", headers=node.auth("reader"))).text()
    assert page  # the portal reads its own session cookie; the API above covers token holders


@pytest.fixture
def hub(make_instance: MakeInstance) -> Instance:
    return make_instance(role="hub", tokens=("admin", "analyst"))


@pytest.fixture
async def hub_client(app_client: ClientFactory, hub: Instance) -> tuple[Client, Instance]:
    return await app_client(hub), hub


async def hold_at_hub(rtype: str, payload: dict[str, Any], visibility: str = "public") -> str:
    """Store and index a signed record at the hub as its ingest does (the read paths are under test)."""
    key = generate_private_key()
    rid = f"urn:ncc:AT:{rtype}:{uuid.uuid4()}"
    env = sign_record({
        "ncc": 1, "id": rid, "type": rtype, "schema": f"{rtype}/1", "origin": "AT", "version": 1,
        "issued_at": "2026-11-26T22:50:01Z", "visibility": visibility, "deleted": False, "payload": payload,
    }, key, kid_for("AT", public_key_raw(key))).to_dict()
    conn = connections.get("default")
    await HubRecord.create(id=rid, origin="AT", type=rtype, version=1, visibility=visibility, deleted=False,
                           digest="ab" * 32, issued_at=env["issued_at"], envelope=orjson.dumps(env).decode(),
                           node_seq=1)
    await SearchService().index(conn, env)
    return rid


@pytest.mark.parametrize("rtype", schemas.RECORD_TYPES)
async def test_hub_anonymous_paths_show_only_public_fields(hub_client: tuple[Client, Instance], rtype: str) -> None:
    client, hub = hub_client
    payload = full_payload(rtype)
    rid = await hold_at_hub(rtype, copy.deepcopy(payload))
    await _anonymous_paths(client, rid, rtype, payload)
    await _privileged_paths(client, rid, rtype, payload, hub.auth("analyst"))


async def test_hub_facets_never_count_a_restricted_field(hub_client: tuple[Client, Instance]) -> None:
    """The address's country (FR) is not public: the country facet counts the public country only."""
    client, _ = hub_client
    await hold_at_hub("organisation", full_payload("organisation"))
    found = await (await client.get("/api/v1/search")).json()
    assert set(found["facets"]["country"]) == {"AT"}
    assert (await (await client.get("/api/v1/search?country=FR")).json())["total"] == 0
