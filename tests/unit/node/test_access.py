"""The access policy (``node/access.py``) without HTTP: who sees which records, fields and index parts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from federation.errors import SchemaInvalid
from node.access import Access
from node.context import build_registry
from node.http.views.search import live_query
from node.search import SearchQuery

REGISTRY = build_registry()
NODE, HUB = Access("node", REGISTRY), Access("hub", REGISTRY)


@dataclass(frozen=True)
class P:
    kind: str = "anonymous"
    role: str | None = None
    issuer: str = ""
    groups: frozenset[str] = frozenset()

    def has_role(self, *roles: str) -> bool:
        return self.kind == "user" and self.role in roles


ANON = P()
SERVICE = P("service")


def user(role: str, *groups: str) -> P:
    return P("user", role, groups=frozenset(groups))


#: The hub's sharing groups in these tests (DESIGN §15), and the group audiences a node's index holds.
GROUPS = {"civdef": frozenset({"DE", "FR"}), "other": frozenset({"AT"})}


@pytest.fixture(autouse=True)
def _groups(monkeypatch: pytest.MonkeyPatch) -> None:
    from node.storage import reads

    async def hub_groups() -> dict[str, frozenset[str]]:
        return dict(GROUPS)

    async def indexed() -> frozenset[str]:
        return frozenset({"group:civdef:DE"})

    async def member(country: str, conn: Any = None) -> frozenset[str]:
        return frozenset({"civdef"}) if country == "DE" else frozenset()

    monkeypatch.setattr(reads, "hub_groups", hub_groups)
    monkeypatch.setattr(reads, "indexed_group_audiences", indexed)
    monkeypatch.setattr(reads, "held_member_groups", member)


ENVELOPE: dict[str, Any] = {
    "ncc": 1, "id": "urn:ncc:DE:organisation:0b9e2c8e-4f0a-4f57-9d36-1c8f4c1d2a11", "type": "organisation",
    "schema": "organisation/1", "origin": "DE", "version": 2, "issued_at": "2026-11-26T22:50:01Z",
    "visibility": "public", "deleted": False,
    "payload": {"legal_name": "Cyber Lab GmbH", "country": "DE", "org_type": "ctype.industry-sme",
                "fields_of_activity": ["foa.academia-research-innovation"], "domains": ["cry"],
                "subdomains": ["cry.10"], "description": "d", "identifiers": {"vat": "DE811907980"},
                "membership": {"status": "revoked", "assessed_at": "2026-01-02T03:04:05Z",
                               "assessed_by": "Officer", "ground": "security-reasons"}},
    "sig": {"alg": "Ed25519", "kid": "DE:x", "value": "y"},
}


@pytest.mark.parametrize(("access", "reader", "visibilities", "privileged"), [
    (NODE, ANON, {"public"}, False),
    (NODE, SERVICE, {"public"}, False),
    (NODE, user("reader"), {"public", "network", "national"}, True),
    (NODE, user("editor"), {"public", "network", "national"}, True),
    (NODE, user("admin"), {"public", "network", "national"}, True),
    (NODE, user("analyst"), {"public"}, False),  # a hub role means nothing on a node
    (HUB, ANON, {"public"}, False),
    (HUB, SERVICE, {"public"}, False),
    (HUB, user("analyst"), {"public", "network"}, True),
    (HUB, user("admin"), {"public", "network"}, True),
    (HUB, user("editor"), {"public"}, False),  # a node role means nothing at the hub
])
async def test_who_sees_which_records(access: Access, reader: P, visibilities: set[str], privileged: bool) -> None:
    assert access.visibilities(reader) == visibilities
    assert access.privileged(reader) is privileged
    assert access.may_see(reader, "public") and not access.may_see(reader, "group:x")
    assert access.may_see(reader, "public", quarantined=True) is privileged
    scoped = await access.search_scope(reader, SearchQuery(q="x", visibilities=frozenset({"national"}),
                                                           restricted=True))
    every = {*visibilities, "group:civdef:DE"} if access is NODE and privileged else visibilities
    admin = {"group:civdef:DE", "group:civdef:FR", "group:other:AT"} if access is HUB and reader.role == "admin" else set()
    assert scoped.visibilities == every | admin and scoped.restricted is privileged


@pytest.mark.parametrize(("reader", "audiences"), [
    (ANON, set()),
    (user("analyst"), set()),
    (user("analyst", "civdef"), {"group:civdef:DE", "group:civdef:FR"}),
    (user("analyst", "other", "gone"), {"group:other:AT"}),  # a group the hub no longer has: nothing
    (user("admin"), {"group:civdef:DE", "group:civdef:FR", "group:other:AT"}),
    (P("service", issuer="DE", groups=frozenset({"civdef"})), set()),  # only user tokens carry groups
])
async def test_group_records_reach_the_group_s_readers_while_their_origin_is_a_member(
        reader: P, audiences: set[str]) -> None:
    scope = await HUB.scope(reader)
    assert {a for a in scope.audiences if a.startswith("group:")} == audiences
    assert scope.sees("group:civdef", "DE") is ("group:civdef:DE" in audiences)
    assert not scope.sees("group:civdef", "AT")  # AT is not a member: nobody sees its civdef records
    assert scope.log_visibilities("FR") == ((("public", "network") if HUB.privileged(reader) else ("public",))
                                            + (("group:civdef",) if "group:civdef:FR" in audiences else ()))


def test_anonymous_readers_get_public_fields_without_sig() -> None:
    shown = NODE.present(ANON, ENVELOPE)
    assert not shown.full and "sig" not in shown.envelope
    assert shown.envelope["payload"]["membership"] == {"status": "revoked"}
    assert "identifiers" not in shown.envelope["payload"]
    assert shown.redacted == ["/payload/identifiers", "/payload/membership/assessed_at",
                              "/payload/membership/assessed_by", "/payload/membership/ground"]
    assert shown.to_json()["redacted"] == shown.redacted
    assert ENVELOPE["payload"]["identifiers"] == {"vat": "DE811907980"}  # the stored one is untouched


def test_privileged_readers_get_the_envelope_as_signed() -> None:
    for access, reader in ((NODE, user("reader")), (HUB, user("analyst"))):
        shown = access.present(reader, ENVELOPE, quarantined=True)
        assert shown.full and shown.to_json() is ENVELOPE and shown.quarantined


def test_tombstones_have_nothing_to_hide() -> None:
    tomb = {**ENVELOPE, "deleted": True, "payload": {"reason": "erased"}}
    assert NODE.present(ANON, tomb).to_json() == tomb


def test_a_schema_this_instance_does_not_know_discloses_nothing() -> None:
    """Default deny for a schema version that is not registered here (a newer ``organisation/9``)."""
    shown = HUB.present(ANON, {**ENVELOPE, "schema": "organisation/9"})
    assert shown.envelope["payload"] == {}
    assert "/payload/legal_name" in shown.redacted


@pytest.mark.parametrize(("asked", "visibilities", "restricted"), [
    ({"visibilities": ["public"], "restricted": True}, {"public"}, False),  # not widened by the flag
    ({"visibilities": ["public", "network"], "restricted": True}, {"public", "network"}, True),
    ({"visibilities": ["public", "network"]}, {"public", "network"}, False),
    ({"visibilities": ["national", "network"], "restricted": True}, {"network"}, True),  # never national
    ({}, {"public"}, False),
])
async def test_live_queries_stay_within_what_the_hub_may_see(asked: dict[str, Any], visibilities: set[str],
                                                             restricted: bool) -> None:
    scoped = await NODE.live_scope(asked, SearchQuery(q="x"))
    assert scoped.visibilities == visibilities and scoped.restricted is restricted


async def test_live_queries_answer_group_records_only_for_the_node_s_groups() -> None:
    de, at = Access("node", REGISTRY, "DE"), Access("node", REGISTRY, "AT")
    asked = {"visibilities": ["public", "network"], "groups": ["civdef", "other"], "restricted": True}
    assert (await de.live_scope(asked, SearchQuery())).visibilities == {"public", "network", "group:civdef:DE"}
    assert (await at.live_scope(asked, SearchQuery())).visibilities == {"public", "network"}  # not a member
    hub_query = SearchQuery(visibilities=frozenset({"public", "network", "group:civdef:DE", "group:civdef:FR"}))
    assert Access.live_groups(hub_query, "DE") == ["civdef"] and Access.live_groups(hub_query, "AT") == []


def test_live_query_restricted_flag_must_be_a_boolean() -> None:
    with pytest.raises(SchemaInvalid) as info:
        live_query({"q": "x", "restricted": "yes"})
    assert info.value.errors[0]["pointer"] == "/restricted"
    assert live_query({"q": "x", "restricted": True})["restricted"] is True


def test_views_and_portal_pages_never_query_models_themselves() -> None:
    """House rule 5 (issue 12): views only parse, call and respond; record reads go through
    ``node.access`` and ``node.storage.reads``. (``health.py`` pings the database for readiness.)"""
    import ast
    from pathlib import Path

    import node

    root = Path(node.__file__).parent
    offenders = []
    for path in sorted([*(root / "http" / "views").glob("*.py"), *(root / "web").glob("*.py")]):
        if path.name == "health.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        guarded = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and getattr(block.test, "id", "") == "TYPE_CHECKING" for n in ast.walk(block)}
        for imp in ast.walk(tree):
            if isinstance(imp, ast.ImportFrom) and id(imp) not in guarded and imp.module and (
                    imp.module.startswith("tortoise") or imp.module in ("node.storage.models", "node.storage.hub_models")):
                offenders.append(f"{path.relative_to(root)}: from {imp.module}")
    assert not offenders, offenders


async def test_log_entries_anonymous_public_a_node_its_own_analysts_theirs() -> None:
    de, hub_token = P("service", issuer="DE"), P("service", issuer="hub")
    for vis in ("public", "network"):
        assert await HUB.log_entry_visible(user("analyst"), vis, "FR")
        assert await HUB.log_entry_visible(user("admin"), vis, "FR")
        assert await HUB.log_entry_visible(de, vis, "DE")
        assert await HUB.log_entry_visible(de, vis, "FR") is (vis == "public")
        assert await HUB.log_entry_visible(ANON, vis, "DE") is (vis == "public")
        assert await HUB.log_entry_visible(hub_token, vis, "DE") is (vis == "public")
    assert await HUB.log_entry_visible(ANON, "public", None)  # a directory entry
    assert not await HUB.log_entry_visible(user("analyst"), "group:civdef", "FR")  # not its group
    assert await HUB.log_entry_visible(user("analyst", "civdef"), "group:civdef", "FR")
    assert await HUB.log_visibilities(ANON, "DE") == ("public",)
    assert await HUB.log_visibilities(de, "FR") == ("public",)
    assert await HUB.log_visibilities(de, "DE") is None
    assert await HUB.log_visibilities(user("analyst"), "FR") == ("public", "network")
    assert await HUB.log_visibilities(user("admin"), "FR") == ("public", "network", "group:civdef")
    assert await HUB.log_visibilities(user("reader"), "DE") == ("public",)  # a node role means nothing here
