"""A deterministic, realistic synthetic Community for one country: organisations, experts with
consent, cross-border projects and facilities, as ``{"type", "visibility", "payload"}`` items
(the shape ``POST /api/v1/records`` and ``ncc import`` take).

Pure: the same ``seed``, ``country`` and ``n`` always give the same items (no clock, no I/O).
Projects, experts and facilities point at organisations by record id, and ids are minted by the
origin node when it stores a record; so generation has two steps. :func:`organisations` first;
the caller stores them (on every node) and passes the ids it got back to :func:`dependents`.
:func:`generate` does both at once with stand-in ids (valid, deterministic, but not stored anywhere)
for tests and files.
"""

from __future__ import annotations

import calendar
import random
import re
import unicodedata
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from node.demo.countries import COUNTRIES, DEMO_ORDER, Country
from node.demo.topics import TOPICS, Topic

Item = dict[str, Any]

#: How an organisation's kind maps to Art. 8(2) organisation types.
_PUBLIC_TYPES = ("ctype.public-entity", "ctype.operational-technical-entity", "ctype.civil-society",
                 "ctype.sector-stakeholder", "ctype.edih")
_POSITIONS = ("Head of Security Research", "Chief Information Security Officer", "Managing Director",
              "Business Development Manager", "Project Officer", "Head of Cyber Range")
_FOLD = str.maketrans({"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "ß": "ss", "æ": "ae", "Æ": "AE", "đ": "d",
                       "Đ": "D", "ħ": "h", "Ħ": "H", "ı": "i", "œ": "oe", "þ": "th", "ð": "d"})
_EPOCH = datetime(2024, 9, 1, tzinfo=UTC)


def counts(n: int) -> dict[str, int]:
    """How many records of each type ``n`` records hold (at least one organisation)."""
    if n < 1:
        raise ValueError("n must be at least 1")
    orgs = max(1, round(n * 0.4))
    rest = n - orgs
    experts = round(rest * 0.5)
    projects = (rest - experts + 1) // 2
    return {"organisation": orgs, "expert": experts, "project": projects,
            "facility": rest - experts - projects}


def organisations(seed: int, country: str, n: int) -> list[Item]:
    """The organisations among ``n`` records of ``country``; the first works on post-quantum
    cryptography for energy grids and is public (the demo's first search finds it).

    Raises:
        KeyError: ``country`` is not an EU Member State.
    """
    c = COUNTRIES[country]
    rng = _rng(seed, country, "organisation")
    order = _topic_order(rng)
    used: set[str] = set()
    return [_organisation(rng, c, i, order[i % len(order)], used) for i in range(counts(n)["organisation"])]


def dependents(seed: int, country: str, n: int, org_ids: Mapping[str, Sequence[str]]) -> list[Item]:
    """The experts, projects and facilities among ``n`` records of ``country``.

    ``org_ids`` maps countries to ids of their stored organisations that may leave their node
    (``public``/``network``); ``org_ids[country]`` must not be empty. Projects take their
    coordinator from ``country`` and participants from up to four other countries.

    Raises:
        KeyError: unknown country; ValueError: no organisation of ``country`` to point at.
    """
    c = COUNTRIES[country]
    own = list(org_ids.get(country) or ())
    if not own:
        raise ValueError(f"no organisation ids of {country} to point at")
    foreign = {k: list(v) for k, v in sorted(org_ids.items()) if k != country and v}
    want = counts(n)
    rng = _rng(seed, country, "dependents")
    order = _topic_order(rng)
    items: list[Item] = []
    for i in range(want["expert"]):
        items.append(_expert(rng, c, order[i % len(order)], own, foreign))
    acronyms: set[str] = set()
    for i in range(want["project"]):
        items.append(_project(rng, c, TOPICS[0] if i == 0 else order[i % len(order)], own, foreign, acronyms))
    names: set[str] = set()
    for i in range(want["facility"]):
        items.append(_facility(rng, c, order[(i + 3) % len(order)], own, names))
    return items


def generate(seed: int, country: str, n: int, partners: Sequence[str] | None = None) -> list[Item]:
    """All ``n`` records of ``country`` with stand-in organisation ids (see the module doc).

    ``partners`` are the countries whose organisations projects may include (default: the next two
    countries of the demo order).
    """
    if partners is None:
        at = DEMO_ORDER.index(country)
        partners = [DEMO_ORDER[(at + 1) % len(DEMO_ORDER)], DEMO_ORDER[(at + 2) % len(DEMO_ORDER)]]
    orgs = organisations(seed, country, n)
    ids = {country: [stand_in_id(seed, country, i) for i, o in enumerate(orgs) if o["visibility"] != "national"]}
    for other in partners:
        ids[other] = [stand_in_id(seed, other, i) for i in range(3)]
    return orgs + dependents(seed, country, n, ids)


def stand_in_id(seed: int, country: str, index: int) -> str:
    """A deterministic organisation id for records generated without a node."""
    value = uuid.uuid5(uuid.NAMESPACE_URL, f"https://demo.ncc-federation.eu/{seed}/{country}/organisation/{index}")
    return f"urn:ncc:{country}:organisation:{value}"


# -- organisations -------------------------------------------------------------------------------


def _organisation(rng: random.Random, c: Country, i: int, topic: Topic, used: set[str]) -> Item:
    city = rng.choice(c.cities)
    kind = "company" if i == 0 else rng.choices(("company", "institute", "public"), (55, 30, 15))[0]
    legal, trading = _org_name(rng, c, kind, city, used)
    if kind == "company":
        org_type = "ctype.industry-sme" if i == 0 or rng.random() < 0.7 else "ctype.industry-large"
    elif kind == "institute":
        org_type = "ctype.academic-research"
    else:
        org_type = rng.choice(_PUBLIC_TYPES)
    slug = _slug(trading.split(" – ")[0])[:40].strip("-")
    host = f"{slug}.example.{c.code.lower()}"
    second = rng.choice(TOPICS) if rng.random() < 0.35 else None
    payload: dict[str, Any] = {
        "legal_name": legal,
        "country": c.code,
        "website": f"https://www.{host}/",
        "org_type": org_type,
        "sme": org_type == "ctype.industry-sme",
        "identifiers": _identifiers(rng, c, kind),
        "fields_of_activity": _pick(rng, topic.fields, 1, 2) + (
            ["foa.training-education"] if kind == "institute" and "foa.training-education" not in topic.fields else []),
        **_tags(rng, topic, second, must_sector="sec.energy" if i == 0 else None),
        "description": _org_description(rng, c, kind, topic, city),
        "keywords": _keywords(rng, c, topic),
        "address": {"city": city, "country": c.code},
        "membership": _membership(rng, c),
        "consent": {"share_with_eccc_and_nccs": True},
    }
    national = _native(c, legal) if c.native else (trading if trading != legal else None)
    if national and national != legal:
        payload["national_name"] = national
    if rng.random() < 0.6:
        payload["contact"] = _contact(rng, c, host)
    if i == 0:
        visibility = "public"
    else:
        visibility = rng.choices(("public", "network", "national"), (80, 12, 8))[0]
    return {"type": "organisation", "visibility": visibility, "payload": payload}


def _org_name(rng: random.Random, c: Country, kind: str, city: str, used: set[str]) -> tuple[str, str]:
    """(legal name, name without legal form), unique within ``used``."""
    if kind != "company":
        for template in rng.sample(c.institutes, len(c.institutes)):
            name = template.format(city=city)
            if name not in used:
                used.add(name)
                return name, name
    for attempt in range(50):
        brand, suffix = rng.choice(c.brands), rng.choice(c.suffixes)
        trading = " ".join(part for part in (brand, suffix, city if attempt > 10 else "") if part)
        legal = f"{trading} {rng.choice(c.forms)}"
        if trading not in used:
            used.update((legal, trading))
            return legal, trading
    trading = f"{rng.choice(c.brands)} {city} {len(used) + 1}"
    legal = f"{trading} {c.forms[0]}"
    used.add(legal)
    return legal, trading


def _identifiers(rng: random.Random, c: Country, kind: str) -> dict[str, str]:
    ids: dict[str, str] = {"registration_number": _shape(rng, c.registration)}
    if kind == "company" or rng.random() < 0.5:
        ids["vat"] = _shape(rng, c.vat, letters=True)
    if rng.random() < 0.7:
        ids["pic"] = str(rng.randint(880_000_000, 999_999_999))
    if kind == "institute":
        ids["ror"] = _ror(rng)
    return ids


def _org_description(rng: random.Random, c: Country, kind: str, topic: Topic, city: str) -> str:
    if kind == "company":
        text = (f"Develops products and services for {topic.activity}. Based in {city}; "
                f"{rng.randint(8, 240)} employees, customers across the EU.")
    elif kind == "institute":
        text = (f"Research and teaching in {topic.activity}, with {rng.randint(6, 60)} researchers and "
                f"doctoral students in {city}; partner in national and EU research projects.")
    else:
        text = (f"Public-interest body in {city} supporting {topic.activity}; "
                f"runs awareness, coordination and matchmaking activities with the national community.")
    return f"{text} {c.cyber[0].upper()}{c.cyber[1:]}: {c.crypto}." if topic.key in ("pqc", "eid", "cert") else text


def _membership(rng: random.Random, c: Country) -> dict[str, str]:
    status = rng.choices(("registered", "assessed", "applied"), (75, 10, 15))[0]
    if status == "applied":
        return {"status": status}
    return {"status": status, "assessed_at": _timestamp(rng), "assessed_by": c.ncc}


# -- experts, projects, facilities ---------------------------------------------------------------


def _expert(rng: random.Random, c: Country, topic: Topic, own: list[str], foreign: dict[str, list[str]]) -> Item:
    first, family = rng.choice(c.first_names), rng.choice(c.family_names)
    affiliation = rng.choice(own)
    if foreign and rng.random() < 0.15:
        affiliation = rng.choice(foreign[rng.choice(sorted(foreign))])
    languages = list(dict.fromkeys([c.languages[0], "en", *rng.sample(c.languages, 1)]))
    payload: dict[str, Any] = {
        "name": f"{first} {family}",
        "country": c.code,
        "affiliation": affiliation,
        "orcid": _orcid(rng),
        "roles": _pick(rng, topic.roles, 1, 2),
        **_tags(rng, topic, None),
        "languages": languages,
        "description": (f"{rng.randint(5, 25)} years of experience in {topic.activity}. "
                        f"Available for project consortia, evaluations and training."),
        "keywords": _keywords(rng, c, topic),
        "email": f"{_slug(first, '.')}.{_slug(family, '.')}@example.{c.code.lower()}",
    }
    payload.pop("use_cases", None)
    draw = rng.random()
    if draw < 0.45:
        payload["consent"] = {"given": True, "at": _timestamp(rng), "scope": "public"}
        visibility = "public"
    elif draw < 0.8:
        payload["consent"] = {"given": True, "at": _timestamp(rng), "scope": "network"}
        visibility = "network"
    else:  # no consent (yet): the profile stays on the node
        payload["consent"] = {"given": False}
        visibility = "national"
    return {"type": "expert", "visibility": visibility, "payload": payload}


def _project(rng: random.Random, c: Country, topic: Topic, own: list[str], foreign: dict[str, list[str]],
             acronyms: set[str]) -> Item:
    grant = rng.randint(101_000_000, 101_199_999)
    year = rng.randint(2021, 2025)
    horizon = rng.random() < 0.6
    if horizon:
        call = f"HORIZON-CL3-{year}-CS-01"
        topic_id = f"{call}-0{rng.randint(1, 4)}"
    else:
        call = f"DIGITAL-ECCC-{year}-DEPLOY-CYBER-0{rng.randint(3, 6)}"
        topic_id = f"{call}-{rng.choice(('SOC', 'COORD', 'SME', 'TECH'))}"
    start = datetime(year + 1, rng.randint(1, 12), 1, tzinfo=UTC)
    end_year, end_month = (start.year + 3, start.month - 1) if start.month > 1 else (start.year + 2, 12)
    end = f"{end_year:04d}-{end_month:02d}-{calendar.monthrange(end_year, end_month)[1]:02d}"
    total = rng.randint(150_000_000, 800_000_000) / 100
    contribution = total if horizon else round(total * 0.5, 2)
    acronym = rng.choice(topic.acronyms)
    while acronym in acronyms:
        acronym = f"{acronym.split('-')[0]}-{len(acronyms) + 1}"
    acronyms.add(acronym)
    countries = rng.sample(sorted(foreign), min(len(foreign), rng.randint(2, 4)))
    participants = [rng.choice(foreign[k]) for k in countries]
    coordinator = rng.choice(own)
    if len(own) > 1 and rng.random() < 0.4:
        participants.append(rng.choice([o for o in own if o != coordinator]))
    partner_text = ", ".join(countries) if countries else "national partners"
    payload: dict[str, Any] = {
        "grant_id": grant,
        "acronym": acronym,
        "title": rng.choice(topic.project_titles),
        "programme": "HORIZON" if horizon else "DIGITAL",
        "call": call,
        "topic": topic_id,
        "start_date": start.strftime("%Y-%m-%d"),
        "end_date": end,
        "total_cost": f"{total:.2f}",
        "eu_contribution": f"{contribution:.2f}",
        "coordinator": coordinator,
        "participants": list(dict.fromkeys(participants)),
        "objective": (f"The project advances {topic.activity}. Coordinated from {c.code} with partners from "
                      f"{partner_text}, it pilots results with operators and publishes open specifications "
                      f"and training material."),
        **_tags(rng, topic, None, must_sector="sec.energy" if topic.key == "pqc" else None),
        "keywords": _pick(rng, topic.keywords, 2, 4),
        "doi": f"10.3030/{grant}",
    }
    visibility = "public" if rng.random() < 0.9 else "network"
    return {"type": "project", "visibility": visibility, "payload": payload}


def _facility(rng: random.Random, c: Country, topic: Topic, own: list[str], names: set[str]) -> Item:
    city = rng.choice(c.cities)
    name = rng.choice(c.facilities).format(city=city)
    base, k = name, 2
    while name in names:
        name, k = f"{base} {_roman(k)}", k + 1
    names.add(name)
    host = f"{_slug(name)[:40].strip('-')}.example.{c.code.lower()}"
    cross_border = rng.random() < 0.8
    payload: dict[str, Any] = {
        "name": name,
        "operator": rng.choice(own),
        "country": c.code,
        "description": (f"Testing and experimentation facility for {topic.activity}: "
                        f"{'; '.join(topic.capabilities)}. Bookable by the week."),
        "capabilities": list(topic.capabilities),
        **_tags(rng, topic, None),
        "access": {
            "who": sorted(rng.sample(("sme", "industry", "academia", "public-sector", "civil-society"), 3)),
            "cross_border": cross_border,
            "cost_model": rng.choice(("free", "cost-recovery", "commercial", "subsidised")),
            "conditions": ("Open to applicants from every Member State; booking four weeks ahead."
                           if cross_border else "Reserved to national applicants; booking four weeks ahead."),
        },
        "location": {"city": city, "country": c.code},
        "website": f"https://{host}/",
        "contact": _contact(rng, c, host),
        "keywords": [c.cyber, *_pick(rng, topic.keywords, 1, 2)],
    }
    payload.pop("use_cases", None)
    visibility = "public" if rng.random() < 0.8 else "network"
    return {"type": "facility", "visibility": visibility, "payload": payload}


# -- helpers -------------------------------------------------------------------------------------


def _rng(seed: int, country: str, part: str) -> random.Random:
    return random.Random(f"ncc-demo:{seed}:{country}:{part}")


def _topic_order(rng: random.Random) -> list[Topic]:
    rest = list(TOPICS[1:])
    rng.shuffle(rest)
    return [TOPICS[0], *rest]


def _pick(rng: random.Random, values: Sequence[str], low: int, high: int) -> list[str]:
    if not values:
        return []
    k = min(len(values), rng.randint(low, high))
    chosen = set(rng.sample(list(values), k))
    return [v for v in values if v in chosen]  # keep the topic's order: the first is the main one


def _tags(rng: random.Random, topic: Topic, second: Topic | None, must_sector: str | None = None) -> dict[str, Any]:
    subdomains = _pick(rng, topic.subdomains, 2, 3)
    if must_sector is not None and "cry.10" in topic.subdomains and "cry.10" not in subdomains:
        subdomains.insert(0, "cry.10")
    sectors = _pick(rng, topic.sectors, 1, 2)
    technologies = _pick(rng, topic.technologies, 1, 2)
    use_cases = list(topic.use_cases)
    if second is not None and second is not topic:
        subdomains += [s for s in second.subdomains[:1] if s not in subdomains]
        sectors += [s for s in second.sectors[:1] if s not in sectors]
    if must_sector is not None and must_sector not in sectors:
        sectors.insert(0, must_sector)
    domains = list(dict.fromkeys(s.split(".")[0] for s in subdomains))
    return {"domains": domains, "subdomains": subdomains, "sectors": sectors, "technologies": technologies,
            "use_cases": use_cases}


def _keywords(rng: random.Random, c: Country, topic: Topic) -> list[str]:
    words = _pick(rng, topic.keywords, 2, 3) + [c.cyber]
    if any(s.startswith("cry.") for s in topic.subdomains):
        words.append(c.crypto)
    return list(dict.fromkeys(words))


def _contact(rng: random.Random, c: Country, host: str) -> dict[str, str]:
    first, family = rng.choice(c.first_names), rng.choice(c.family_names)
    return {
        "first_name": first,
        "family_name": family,
        "email": f"{_slug(first, '.')}.{_slug(family, '.')}@{host}",
        "position": rng.choice(_POSITIONS),
        "phone": f"{c.phone} {rng.randint(100_000, 9_999_999)}",
    }


def _timestamp(rng: random.Random) -> str:
    return (_EPOCH + timedelta(seconds=rng.randint(0, 420 * 86400))).strftime("%Y-%m-%dT%H:%M:%SZ")


def _shape(rng: random.Random, shape: str, letters: bool = False) -> str:
    """Fill a shape: ``9`` → a digit, and with ``letters`` an ``A`` after the two-letter country
    prefix → a capital letter; other characters stay."""
    out = []
    for i, ch in enumerate(shape):
        if ch == "9":
            out.append(str(rng.randint(0, 9)))
        elif letters and ch == "A" and i >= 2:
            out.append(rng.choice("BCDEFGHJKLMNPRSTVWXYZ"))
        else:
            out.append(ch)
    return "".join(out)


def _orcid(rng: random.Random) -> str:
    """A random ORCID iD with its ISO 7064 MOD 11-2 check character."""
    digits = f"0000000{rng.randint(1, 3)}{rng.randint(0, 9_999_999):07d}"
    total = 0
    for ch in digits:
        total = (total + int(ch)) * 2
    check = (12 - total % 11) % 11
    body = digits + ("X" if check == 10 else str(check))
    return "-".join(body[i:i + 4] for i in range(0, 16, 4))


def _ror(rng: random.Random) -> str:
    from federation.formats import ror_checksum

    alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
    body = "".join(rng.choice(alphabet) for _ in range(6))
    return f"https://ror.org/0{body}{ror_checksum(body)}"


def _slug(text: str, sep: str = "-") -> str:
    folded = unicodedata.normalize("NFKD", text.translate(_FOLD))
    ascii_text = folded.encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", sep, ascii_text).strip(sep)


def _native(c: Country, text: str) -> str:
    """Write a transliterated name in the country's script (GR, CY: Greek; BG: Cyrillic)."""
    table = c.native or {}
    for latin in sorted(table, key=len, reverse=True):
        text = re.sub(rf"(?<![\w.]){re.escape(latin)}(?![\w])", table[latin], text)
    return text


def _roman(k: int) -> str:
    return {2: "II", 3: "III", 4: "IV", 5: "V"}.get(k, str(k))


def application_payload(country: str) -> dict[str, Any]:
    """The organisation that applies during ``ncc demo`` (DESIGN §12): no membership, no consent."""
    return {
        "legal_name": f"Demo Cyber Shield {country}",
        "country": country,
        "org_type": "ctype.industry-sme",
        "fields_of_activity": ["foa.academia-research-innovation"],
        "domains": ["cry"],
        "subdomains": ["cry.10"],
        "description": "Applied through the node's portal during the demo: post-quantum cryptography for grids.",
    }
