"""The demo dataset: deterministic, valid against the schemas, accepted by the publisher, realistic."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from federation.formats import is_orcid, is_ror
from node.config import EU_COUNTRIES
from node.context import build_registry
from node.demo import dataset
from node.demo.countries import COUNTRIES, DEMO_ORDER
from node.demo.topics import TOPICS
from node.keystore import InstanceKey
from node.services.publish import Publisher
from schemas import load_vocabularies, record_schema_id

REGISTRY = build_registry()
SIZES = (1, 7, 60)


def publisher(country: str) -> Publisher:
    from federation.keys import generate_private_key, kid_for, public_key_raw

    key = generate_private_key()
    instance = InstanceKey(key, kid_for(country, public_key_raw(key)))
    return Publisher(country, lambda: instance, REGISTRY, lambda: datetime(2026, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize("country", sorted(EU_COUNTRIES))
def test_every_item_validates_and_the_publisher_accepts_it(country: str) -> None:
    pub = publisher(country)
    for n in SIZES:
        items = dataset.generate(3, country, n)
        assert len(items) == n
        for item in items:
            assert set(item) == {"type", "visibility", "payload"}
            REGISTRY.validate(record_schema_id(item["type"]), item["payload"])
            pub.check_payload(item["type"], item["visibility"], item["payload"])  # raises when refused
            pub.check_transition(None, item["payload"])


def test_same_seed_same_data_other_seed_other_data() -> None:
    assert dataset.generate(5, "DE", 40) == dataset.generate(5, "DE", 40)
    assert dataset.generate(5, "DE", 40) != dataset.generate(6, "DE", 40)
    assert dataset.organisations(5, "FR", 40) == dataset.generate(5, "FR", 40)[: dataset.counts(40)["organisation"]]


def test_counts_add_up_and_there_is_always_an_organisation() -> None:
    for n in range(1, 200):
        c = dataset.counts(n)
        assert sum(c.values()) == n and c["organisation"] >= 1
    assert dataset.counts(60) == {"organisation": 24, "expert": 18, "project": 9, "facility": 9}
    with pytest.raises(ValueError):
        dataset.counts(0)


def test_first_organisation_anchors_the_post_quantum_energy_search() -> None:
    for country in DEMO_ORDER:
        first = dataset.organisations(1, country, 5)[0]
        assert first["visibility"] == "public"
        assert "cry.10" in first["payload"]["subdomains"] and "sec.energy" in first["payload"]["sectors"]
        assert "post-quantum" in first["payload"]["description"]


def test_names_are_national_with_diacritics_and_native_scripts() -> None:
    names = {c: [i["payload"]["legal_name"] for i in dataset.organisations(2, c, 60)] for c in COUNTRIES}
    for country, legal in names.items():
        assert len(set(legal)) == len(legal), f"{country}: duplicate legal names"
    assert any(re.search(r"[^\x00-\x7f]", n) for n in names["DE"] + names["AT"] + names["EE"] + names["FR"])
    greek = [i["payload"].get("national_name", "") for i in dataset.organisations(2, "GR", 30)]
    assert any(re.search(r"[\u0370-\u03ff]", n) for n in greek)
    bulgarian = [i["payload"].get("national_name", "") for i in dataset.organisations(2, "BG", 30)]
    assert any(re.search(r"[\u0400-\u04ff]", n) for n in bulgarian)
    assert any(n.endswith(" OÜ") for c in range(10) for n in [i["payload"]["legal_name"] for i in dataset.organisations(c, "EE", 20)])
    vats = [i["payload"]["identifiers"].get("vat", "") for i in dataset.organisations(2, "GR", 30)]
    assert all(v.startswith("EL") for v in vats if v), "Greek VAT numbers carry the EU prefix EL"


def test_identifiers_pass_their_check_digits() -> None:
    for country in DEMO_ORDER[:6]:
        items = dataset.generate(11, country, 60)
        for item in items:
            p = item["payload"]
            if item["type"] == "expert":
                assert is_orcid(p["orcid"])
            if item["type"] == "organisation" and "ror" in p.get("identifiers", {}):
                assert is_ror(p["identifiers"]["ror"])


def test_experts_share_only_with_consent() -> None:
    experts = [i for c in DEMO_ORDER for i in dataset.generate(4, c, 60) if i["type"] == "expert"]
    assert {e["visibility"] for e in experts} == {"public", "network", "national"}
    for e in experts:
        consent = e["payload"]["consent"]
        if e["visibility"] != "national":
            assert consent["given"] is True and consent["scope"] == e["visibility"]


def test_projects_are_cross_border_and_point_at_the_ids_given() -> None:
    ids = {c: [dataset.stand_in_id(9, c, i) for i in range(4)] for c in ("DE", "FR", "EE")}
    items = dataset.dependents(9, "DE", 60, ids)
    projects = [i["payload"] for i in items if i["type"] == "project"]
    assert projects
    known = {x for v in ids.values() for x in v}
    for p in projects:
        assert p["coordinator"] in ids["DE"]
        assert set(p["participants"]) <= known
        assert {x.split(":")[2] for x in p["participants"]} - {"DE"}, "every project has a foreign participant"
        assert p["doi"] == f"10.3030/{p['grant_id']}"
    for i in items:
        if i["type"] == "facility":
            assert i["payload"]["operator"] in ids["DE"]
        if i["type"] == "expert":
            assert i["payload"]["affiliation"] in known


def test_dependents_need_an_organisation_of_their_own_country() -> None:
    with pytest.raises(ValueError):
        dataset.dependents(1, "DE", 10, {"FR": [dataset.stand_in_id(1, "FR", 0)]})


def test_topics_and_countries_use_only_known_vocabulary() -> None:
    vocab = {name: {t["id"] for t in terms} for name, terms in load_vocabularies().items()}
    for t in TOPICS:
        assert set(t.subdomains) <= vocab["subdomains"] and set(t.domains) <= vocab["knowledge_domains"]
        assert set(t.sectors) <= vocab["sectors"] and set(t.technologies) <= vocab["technologies"]
        assert set(t.use_cases) <= vocab["use_cases"] and set(t.roles) <= vocab["ecsf_role_profiles"]
        assert set(t.fields) <= vocab["fields_of_activity"]
    assert sorted(COUNTRIES) == sorted(EU_COUNTRIES) == sorted(DEMO_ORDER)
    assert "GR" in COUNTRIES and "EL" not in COUNTRIES
    assert DEMO_ORDER[:3] == ("DE", "FR", "EE")
