"""GET /api/v1/consortia and /consortia on the hub (DESIGN §16), over planted data in the hub's
index: one 3-country team, a greedy trap, SMEs, a network-only organisation, a description."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient
from tortoise.connection import connections

from federation.envelope import sign_record
from federation.keys import generate_private_key, kid_for, public_key_raw
from node.services.search import SearchService
from node.storage.hub_models import HubRecord
from tests.integration.conftest import ClientFactory, MakeInstance
from tests.integration.support import Instance, org

Client = TestClient[Any, Any]
KEY = generate_private_key()

#: cry.10 (post-quantum cryptography), sec.energy, tech.big-data: one team of three countries
#: covers them. ``trap`` (DE) holds two of them, but the only holder of the third is in DE too.
PLANTED: dict[str, tuple[str, dict[str, Any], str]] = {
    "trap": (
        "DE",
        org(
            legal_name="Zweifach Sicherheit AG",
            country="DE",
            subdomains=["cry.10"],
            domains=["cry"],
            sectors=["sec.energy"],
            sme=False,
            description="Grid security.",
        ),
        "public",
    ),
    "de-data": (
        "DE",
        org(
            legal_name="Datenwerk GmbH",
            country="DE",
            subdomains=[],
            domains=["dsa"],
            technologies=["tech.big-data"],
            sme=False,
            description="Analytics.",
        ),
        "public",
    ),
    "fr-pqc": (
        "FR",
        org(legal_name="Quantique SAS", country="FR", sme=False, description="Lattices."),
        "public",
    ),
    "it-energy": (
        "IT",
        org(
            legal_name="Energia Sicura SpA",
            country="IT",
            subdomains=[],
            domains=["nds"],
            sectors=["sec.energy"],
            sme=False,
            description="Substations.",
        ),
        "public",
    ),
    "pl-sme": (
        "PL",
        org(
            legal_name="Mała Firma Sp. z o.o.",
            country="PL",
            subdomains=[],
            domains=["hfs"],
            sme=True,
            description="Training.",
        ),
        "public",
    ),
    # network only: the best team member of all, which no anonymous reader may ever be offered
    "es-secret": (
        "ES",
        org(
            legal_name="Secreto Completo SL",
            country="ES",
            subdomains=["cry.10"],
            domains=["cry"],
            sectors=["sec.energy"],
            technologies=["tech.big-data"],
            sme=True,
            description="Everything.",
        ),
        "network",
    ),
    # no tag, but its description names the topic (text evidence; public field)
    "at-text": (
        "AT",
        org(
            legal_name="Textlabor GmbH",
            country="AT",
            subdomains=[],
            domains=["hfs"],
            sme=False,
            description="We do big data pipelines for utilities.",
        ),
        "public",
    ),
}
TAGS = {"subdomain": "cry.10", "sector": "sec.energy", "technology": "tech.big-data"}


async def hold(country: str, payload: dict[str, Any], visibility: str) -> str:
    """Store and index a signed organisation at the hub as its ingest does."""
    rid = f"urn:ncc:{country}:organisation:{uuid.uuid4()}"
    env = sign_record(
        {
            "ncc": 1,
            "id": rid,
            "type": "organisation",
            "schema": "organisation/1",
            "origin": country,
            "version": 1,
            "issued_at": "2026-11-26T22:50:01Z",
            "visibility": visibility,
            "deleted": False,
            "payload": payload,
        },
        KEY,
        kid_for(country, public_key_raw(KEY)),
    ).to_dict()
    await HubRecord.create(
        id=rid,
        origin=country,
        type="organisation",
        version=1,
        visibility=visibility,
        deleted=False,
        digest="ab" * 32,
        issued_at=env["issued_at"],
        envelope=orjson.dumps(env).decode(),
        node_seq=1,
    )
    await SearchService().index(connections.get("default"), env)
    return rid


@pytest.fixture
def hub(make_instance: MakeInstance) -> Instance:
    return make_instance(role="hub", tokens=("admin", "analyst"))


@pytest.fixture
def accelerator(request: pytest.FixtureRequest) -> str:
    """The hub's ``search_accelerator`` (candidates from its bitmaps, or SQL: the same answers)."""
    return str(getattr(request, "param", "true"))


@pytest.fixture
async def planted(
    app_client: ClientFactory, hub: Instance, accelerator: str
) -> tuple[Client, Instance, dict[str, str]]:
    client = await app_client(hub, search_accelerator=accelerator)
    ids = {name: await hold(country, payload, vis) for name, (country, payload, vis) in PLANTED.items()}
    return client, hub, ids


async def consortia(client: Client, headers: dict[str, str] | None = None, **params: Any) -> dict[str, Any]:
    query: list[tuple[str, str]] = []
    for name, value in {**TAGS, **params}.items():
        for item in value if isinstance(value, list) else [value]:
            query.append((name, str(item)))
    resp = await client.get("/api/v1/consortia", params=query, headers=headers or {})
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


def members(proposal: dict[str, Any], ids: dict[str, str]) -> set[str]:
    names = {v: k for k, v in ids.items()}
    return {names[m["id"]] for m in proposal["members"]}


@pytest.mark.parametrize("accelerator", ["true", "false"], indirect=True)
async def test_the_one_three_country_team_comes_first(
    planted: tuple[Client, Instance, dict[str, str]],
) -> None:
    client, _, ids = planted
    body = await consortia(client, min_countries=3, size=3)
    first = body["consortia"][0]
    assert members(first, ids) == {"fr-pqc", "it-energy", "de-data"}
    assert first["missing"] == [] and first["covers"] == ["cry.10", "sec.energy", "tech.big-data"]
    assert first["countries"] == ["DE", "FR", "IT"] and body["missing"] == []
    brings = {m["id"]: m["covers"] for m in first["members"]}
    assert brings[ids["fr-pqc"]] == ["cry.10"] and brings[ids["de-data"]] == ["tech.big-data"]
    assert [m["title"] for m in first["members"] if m["id"] == ids["fr-pqc"]] == ["Quantique SAS"]
    keys = [(len(c["missing"]), -c["score"]) for c in body["consortia"]]
    assert keys == sorted(keys)


@pytest.mark.parametrize("accelerator", ["true", "false"], indirect=True)
async def test_network_only_organisation_is_never_proposed_to_anonymous_readers(
    planted: tuple[Client, Instance, dict[str, str]],
) -> None:
    client, hub, ids = planted
    anonymous = await consortia(client, k=10, size=5, min_countries=1)
    raw = orjson.dumps(anonymous).decode()
    assert ids["es-secret"] not in raw and "Secreto" not in raw and '"ES"' not in raw
    # an analyst sees network records: the one organisation that covers everything is proposed
    analyst = await consortia(client, headers=hub.auth("analyst"), k=10, size=5, min_countries=1)
    assert ids["es-secret"] in {m["id"] for c in analyst["consortia"] for m in c["members"]}
    # excluding a network id as anonymous is answered like an unknown one
    again = await consortia(client, k=10, size=5, min_countries=1, exclude=[ids["es-secret"], "urn:nothing"])
    assert again == anonymous
    # the portal page neither
    page = await (await client.get("/consortia", params={**TAGS, "k": "10", "min_countries": "1"})).text()
    assert ids["es-secret"] not in page and "Secreto" not in page


@pytest.mark.parametrize("accelerator", ["true", "false"], indirect=True)
async def test_sme_and_exclusion_constraints_hold(planted: tuple[Client, Instance, dict[str, str]]) -> None:
    client, _, ids = planted
    body = await consortia(client, min_countries=3, size=4, sme="true", k=5)
    assert body["consortia"]
    for proposal in body["consortia"]:
        assert any(m["sme"] for m in proposal["members"]), proposal
        assert ids["pl-sme"] in {m["id"] for m in proposal["members"]}
        assert len(proposal["members"]) <= 4
    excluded = await consortia(client, min_countries=3, size=3, k=10, exclude=[ids["fr-pqc"], ids["de-data"]])
    for proposal in excluded["consortia"]:
        assert not {ids["fr-pqc"], ids["de-data"]} & {m["id"] for m in proposal["members"]}
    assert excluded["consortia"][0]["missing"] == []  # trap (DE) + it + at-text's description evidence
    assert members(excluded["consortia"][0], ids) == {"trap", "it-energy", "at-text"}
    text = next(m for m in excluded["consortia"][0]["members"] if m["id"] == ids["at-text"])
    assert text["covers"] == ["tech.big-data"] and text["evidence"] == ["tech.big-data"]


async def test_an_impossible_request_says_what_is_missing(
    planted: tuple[Client, Instance, dict[str, str]],
) -> None:
    client, _, _ = planted
    body = await consortia(client, subdomain=["cry.10", "cry.07"], min_countries=3)
    assert body["missing"] == ["cry.07"]
    assert all("cry.07" in c["missing"] for c in body["consortia"])
    nobody = await consortia(client, subdomain="cry.07", sector=[], technology=[])
    assert nobody == {"consortia": [], "missing": ["cry.07"]}


@pytest.mark.parametrize(
    "query",
    [
        "",
        "min_countries=3",
        "subdomain=nope",
        "subdomain=cry.10&size=11",
        "subdomain=cry.10&size=2",
        "subdomain=cry.10&min_countries=4&size=3",
        "subdomain=cry.10&k=0",
        "subdomain=cry.10&k=x",
        "subdomain=cry.10&sme=maybe",
        "sector=cry.10",
        "subdomain=cry.10&size=3&size=4",
    ],
)
async def test_bad_parameters_are_400_invalid_parameter(
    planted: tuple[Client, Instance, dict[str, str]], query: str
) -> None:
    client, _, _ = planted
    resp = await client.get(f"/api/v1/consortia?{query}")
    assert resp.status == 400, (query, await resp.text())
    assert resp.content_type == "application/problem+json"
    assert (await resp.json())["code"] == "invalid_parameter"


async def test_portal_page_form_and_proposals(planted: tuple[Client, Instance, dict[str, str]]) -> None:
    client, _, _ = planted
    empty = await client.get("/consortia")
    assert empty.status == 200
    text = await empty.text()
    assert 'name="subdomain"' in text and "Post-quantum cryptography" in text
    resp = await client.get("/consortia", params={**TAGS, "min_countries": "3", "size": "3"})
    text = await resp.text()
    assert resp.status == 200
    assert "Quantique SAS" in text and "Covers every topic" in text
    bad = await client.get("/consortia", params={"subdomain": "cry.10", "min_countries": "6", "size": "5"})
    assert bad.status == 400 and "min_countries" in await bad.text()


async def test_not_on_a_node(client: Client) -> None:
    assert (await client.get("/api/v1/consortia?subdomain=cry.10")).status == 404
