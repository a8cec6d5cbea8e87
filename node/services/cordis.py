"""CORDIS open-data files (``project.csv``, ``organization.csv``) mapped to our payloads (pure).

CORDIS publishes one row per (project, participant) in ``organization.csv`` and one row per project
in ``project.csv``; both are ``;``-separated, ``"``-quoted UTF-8. The mapping tables are documented
in ``docs/import.md``; the decisions, in short:

- Organisations: only those of the node's country (CORDIS writes ``EL`` for Greece and ``UK`` for
  the United Kingdom: mapped to ``GR``/``GB``), one per ``organisationID`` (the PIC), fields merged
  from all its rows (first non-empty value wins). ``activityType`` gives ``org_type`` and
  ``fields_of_activity`` (:data:`ACTIVITY_TYPES`); the knowledge domains are left empty for the NCC
  to assess. The description says what CORDIS knows: name, kind, city, projects.
- Projects: amounts become decimal strings with two decimals (CORDIS writes ``,`` or ``.``), the
  objective is cut to the schema's 4000 characters; the coordinator and participants are linked
  only to organisation records already on this node (found by PIC): others have no id we know.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from node.services.tabular import CellError
from schemas import load_schema_documents, vocabulary_schema_id

PROJECTS = "cordis-projects"
ORGANISATIONS = "cordis-organizations"

PROJECT_HEADER = frozenset({"id", "acronym", "title", "frameworkProgramme", "objective"})
ORGANISATION_HEADER = frozenset({"projectID", "organisationID", "activityType", "role", "country"})

DESCRIPTION_MAX = 800
OBJECTIVE_MAX = 4000
TITLE_MAX = 500
ACRONYM_MAX = 100
CALL_MAX = 200

# activityType -> (org_type, fields_of_activity). A CORDIS participant takes part in EU-funded
# research and innovation, so every organisation gets foa.academia-research-innovation; the type adds
# what its kind of organisation does besides. PRC is an SME or not by the SME flag. The NCC reviews
# these at assessment (Art. 8(4)); they are a starting point, not a finding.
ACTIVITY_TYPES: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "HES": ("ctype.academic-research", ("foa.academia-research-innovation", "foa.training-education")),
    "REC": ("ctype.academic-research", ("foa.academia-research-innovation",)),
    "PRC": (
        "ctype.industry-large",
        ("foa.academia-research-innovation", "foa.industrial-product-development"),
    ),
    "PUB": ("ctype.public-entity", ("foa.academia-research-innovation",)),
    "OTH": ("ctype.civil-society", ("foa.academia-research-innovation",)),
}
ACTIVITY_LABELS: Mapping[str, str] = {
    "HES": "higher or secondary education establishment",
    "REC": "research organisation",
    "PRC": "private company",
    "PUB": "public body",
    "OTH": "organisation",
}
COORDINATOR_ROLES = frozenset({"coordinator"})
PARTICIPANT_ROLES = frozenset({"participant", "associatedPartner"})  # thirdParty: not a beneficiary

_PIC = re.compile(r"^[0-9]{9}$")
_VAT = re.compile(
    r"^(AT|BE|BG|CY|CZ|DE|DK|EE|EL|ES|FI|FR|HR|HU|IE|IT|LT|LU|LV|MT|NL|PL|PT|RO|SE|SI|SK|IS|LI|NO)[0-9A-Z]{2,13}$"
)
_DATE = re.compile(r"^([0-9]{4}-[0-9]{2}-[0-9]{2})(?:[ T][0-9:.]+Z?)?$")
_PROGRAMME = re.compile(r"^[A-Z0-9][A-Z0-9_.-]{0,31}$")
_DOI = re.compile(r"^10\.[0-9]{4,9}/[!-~]{1,200}$")
_URL = re.compile(r"^https?://[^\s]+$")


def _country_aliases() -> dict[str, str]:
    for doc in load_schema_documents():
        if doc.get("$id") == vocabulary_schema_id("countries"):
            return dict(doc.get("x-ncc-eu-code-aliases", {}))
    return {"EL": "GR", "UK": "GB"}  # pragma: no cover - the vocabulary ships with the package


COUNTRY_ALIASES: Mapping[str, str] = _country_aliases()


def iso_country(code: str) -> str:
    """ISO 3166-1 alpha-2 for a CORDIS/EU country code (``EL`` -> ``GR``, ``UK`` -> ``GB``)."""
    code = code.strip().upper()
    return COUNTRY_ALIASES.get(code, code)


def detect(header: Iterable[str]) -> str | None:
    """``cordis-projects``, ``cordis-organizations`` or None for a CSV header."""
    names = {h.strip() for h in header}
    if ORGANISATION_HEADER <= names:
        return ORGANISATIONS
    if PROJECT_HEADER <= names:
        return PROJECTS
    return None


def read_rows(text: str, delimiter: str = ";") -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Parse a CORDIS CSV: the header and ``(line where the row starts, {column: cell})`` rows.

    Raises:
        csv.Error: the file is not parseable CSV.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [h.strip() for h in next(reader, [])]
    rows: list[tuple[int, dict[str, str]]] = []
    line = reader.line_num + 1
    for cells in reader:
        if any(c.strip() for c in cells):
            rows.append(
                (line, {h: (cells[i].strip() if i < len(cells) else "") for i, h in enumerate(header)})
            )
        line = reader.line_num + 1
    return header, rows


# -- values ---------------------------------------------------------------------------------------


def money(text: str, pointer: str) -> str | None:
    """A CORDIS amount (``1234,5`` or ``1234.50``) as a decimal string with two decimals.

    Raises:
        CellError: not a non-negative number.
    """
    text = text.strip().replace(" ", "")
    if not text:
        return None
    try:
        value = Decimal(text.replace(",", "."))
    except InvalidOperation:
        raise CellError(pointer, f"{text!r} is not an amount") from None
    if not value.is_finite() or value < 0:
        raise CellError(pointer, f"{text!r} is not a non-negative amount")
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def date(text: str, pointer: str) -> str | None:
    """``YYYY-MM-DD`` from a CORDIS date (optionally followed by a time).

    Raises:
        CellError: not such a date.
    """
    if not text:
        return None
    m = _DATE.match(text)
    if not m:
        raise CellError(pointer, f"{text!r} is not a date YYYY-MM-DD")
    return m.group(1)


def truncate(text: str, limit: int) -> str:
    """At most ``limit`` characters, cut at a word boundary with an ellipsis when too long."""
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit * 0.8:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-") + "…"


def website(text: str) -> str | None:
    """An http(s) URL from CORDIS ``organizationURL`` (``www.x.eu`` gets ``https://``), else None."""
    text = text.strip()
    if not text:
        return None
    if not re.match(r"^https?://", text, re.IGNORECASE):
        text = "https://" + text
    return text if _URL.match(text) and len(text) <= 2048 else None


def vat(text: str, country: str) -> str | None:
    """A VAT number in the schema's form (EU prefix, Greece ``EL``), else None (CORDIS has gaps)."""
    value = re.sub(r"[\s.\-]", "", text).upper()
    if value.startswith("GR"):
        value = "EL" + value[2:]
    if value and value[:2].isdigit() and country:
        value = ("EL" if country == "GR" else country) + value
    return value if _VAT.match(value) else None


# -- organisations --------------------------------------------------------------------------------


@dataclass
class Participation:
    """One organization.csv row reduced to what links projects and organisations."""

    project_id: str
    organisation_id: str
    role: str
    country: str  # ISO


@dataclass
class CordisOrganisation:
    """The rows of one organisationID, merged."""

    organisation_id: str
    line: int
    fields: dict[str, str] = field(default_factory=dict)
    projects: list[tuple[str, str]] = field(default_factory=list)  # (acronym, role)


def participations(rows: Iterable[tuple[int, Mapping[str, str]]]) -> Iterator[Participation]:
    """Every (project, organisation, role) of an organization.csv."""
    for _, row in rows:
        if row.get("projectID") and row.get("organisationID"):
            yield Participation(
                row["projectID"],
                row["organisationID"],
                row.get("role", ""),
                iso_country(row.get("country", "")),
            )


def organisations_of(rows: Iterable[tuple[int, Mapping[str, str]]], country: str) -> list[CordisOrganisation]:
    """The distinct organisations of ``country`` (ISO), in order of first appearance."""
    merged: dict[str, CordisOrganisation] = {}
    for line, row in rows:
        if iso_country(row.get("country", "")) != country:
            continue
        oid = row.get("organisationID", "")
        org = merged.get(oid)
        if org is None:
            org = merged[oid] = CordisOrganisation(oid, line)
        for key, value in row.items():
            if value and not org.fields.get(key):
                org.fields[key] = value
        acronym = row.get("projectAcronym", "")
        if acronym and acronym not in (a for a, _ in org.projects):
            org.projects.append((acronym, row.get("role", "")))
    return list(merged.values())


def _description(org: CordisOrganisation, country: str) -> str:
    f = org.fields
    name = f.get("name") or org.organisation_id
    short = f" ({f['shortName']})" if f.get("shortName") and f["shortName"] != name else ""
    kind = ACTIVITY_LABELS.get(f.get("activityType", ""), "organisation")
    place = f" in {f['city']}" if f.get("city") else ""
    text = f"{name}{short}: {kind}{place}, {country}."
    if org.projects:
        projects = ", ".join(f"{a} (coordinator)" if r in COORDINATOR_ROLES else a for a, r in org.projects)
        text += f" Takes part in EU-funded projects (CORDIS): {projects}."
    return truncate(text, DESCRIPTION_MAX)


def organisation_payload(org: CordisOrganisation, country: str) -> dict[str, Any]:
    """The organisation payload of one CORDIS organisation of this node's ``country``.

    Raises:
        CellError: no name, or an ``activityType`` without a mapping.
    """
    f = org.fields
    if not f.get("name"):
        raise CellError("/legal_name", "CORDIS name is empty")
    activity = f.get("activityType", "")
    if activity not in ACTIVITY_TYPES:
        raise CellError(
            "/org_type", f"CORDIS activityType {activity!r} has no mapping (HES, REC, PRC, PUB, OTH)"
        )
    org_type, foa = ACTIVITY_TYPES[activity]
    sme = {"true": True, "false": False}.get(f.get("SME", "").lower())
    if activity == "PRC" and sme:
        org_type = "ctype.industry-sme"
    payload: dict[str, Any] = {"legal_name": truncate(" ".join(f["name"].split()), 300), "country": country}
    if site := website(f.get("organizationURL", "")):
        payload["website"] = site
    payload["org_type"] = org_type
    if sme is not None:
        payload["sme"] = sme
    identifiers = {}
    if _PIC.match(org.organisation_id):
        identifiers["pic"] = org.organisation_id
    if number := vat(f.get("vatNumber", ""), country):
        identifiers["vat"] = number
    if identifiers:
        payload["identifiers"] = identifiers
    payload["fields_of_activity"] = list(foa)
    payload["domains"] = []
    payload["subdomains"] = []
    payload["description"] = _description(org, country)
    if f.get("shortName") and f["shortName"] != f["name"]:
        payload["keywords"] = [truncate(f["shortName"], 100)]
    address = {
        key: truncate(f[col], limit)
        for key, col, limit in (
            ("street", "street", 200),
            ("postcode", "postCode", 20),
            ("city", "city", 100),
        )
        if f.get(col)
    }
    if address:
        payload["address"] = {**address, "country": country}
    return payload


# -- projects -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Links:
    """Who takes part in which project, and which organisations this node holds (PIC -> record id)."""

    by_project: Mapping[str, list[Participation]]
    records: Mapping[str, str]

    @classmethod
    def build(cls, parts: Iterable[Participation], records: Mapping[str, str]) -> Links:
        by_project: dict[str, list[Participation]] = {}
        for p in parts:
            by_project.setdefault(p.project_id, []).append(p)
        return cls(by_project, records)


def in_scope(project_id: str, links: Links | None, country: str, scope: str) -> bool:
    """Whether a project belongs on this node: ``participating`` (any organisation of ``country``),
    ``coordinated`` (the coordinator is of ``country``), ``all`` (no organization.csv given)."""
    if links is None or scope == "all":
        return True
    parts = links.by_project.get(project_id, [])
    if scope == "coordinated":
        return any(p.country == country and p.role in COORDINATOR_ROLES for p in parts)
    return any(p.country == country for p in parts)


def project_payload(row: Mapping[str, str], links: Links | None) -> dict[str, Any]:
    """The project payload of one project.csv row.

    Raises:
        CellError: a missing/invalid id, title, date or amount.
    """
    raw_id = row.get("id", "")
    if not raw_id.isdigit() or int(raw_id) < 1:
        raise CellError("/grant_id", f"CORDIS id {raw_id!r} is not a grant agreement number")
    if not row.get("title"):
        raise CellError("/title", "CORDIS title is empty")
    payload: dict[str, Any] = {"grant_id": int(raw_id)}
    if row.get("acronym"):
        payload["acronym"] = truncate(row["acronym"], ACRONYM_MAX)
    payload["title"] = truncate(row["title"], TITLE_MAX)
    programme = row.get("frameworkProgramme", "").upper()
    if _PROGRAMME.match(programme):
        payload["programme"] = programme
    call = row.get("masterCall") or row.get("subCall")
    if call:
        payload["call"] = truncate(call, CALL_MAX)
    topic = re.split(r"[,;]", row.get("topics", ""))[0].strip()
    if topic:
        payload["topic"] = truncate(topic, CALL_MAX)
    for key, col in (("start_date", "startDate"), ("end_date", "endDate")):
        if value := date(row.get(col, ""), f"/{key}"):
            payload[key] = value
    for key, col in (("total_cost", "totalCost"), ("eu_contribution", "ecMaxContribution")):
        if amount := money(row.get(col, ""), f"/{key}"):
            payload[key] = amount
    if links is not None:
        coordinator, participants = _linked(raw_id, links)
        if coordinator:
            payload["coordinator"] = coordinator
        if participants:
            payload["participants"] = participants
    if row.get("objective"):
        payload["objective"] = truncate(row["objective"], OBJECTIVE_MAX)
    doi = row.get("grantDoi", "")
    if _DOI.match(doi):
        payload["doi"] = doi
    return payload


def _linked(project_id: str, links: Links) -> tuple[str | None, list[str]]:
    coordinator: str | None = None
    participants: list[str] = []
    for p in links.by_project.get(project_id, []):
        rid = links.records.get(p.organisation_id)
        if rid is None:
            continue
        if p.role in COORDINATOR_ROLES and coordinator is None:
            coordinator = rid
        elif p.role in PARTICIPANT_ROLES and rid not in participants and rid != coordinator:
            participants.append(rid)
    return coordinator, participants
