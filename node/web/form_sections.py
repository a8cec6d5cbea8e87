"""The record forms in sections: what to fill first open, the optional parts folded away.

A record type's top-level fields (``node.web.schema_forms.form_fields``) are grouped under headings.
Core sections are always shown; the others are ``<details>`` that open when a field in them has an
error. A field no section names (a newer schema's) lands in "Other details", so nothing in the
schema is ever left off the form.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from node.web.schema_forms import Field, fields_by_pointer


@dataclass(frozen=True)
class SectionSpec:
    key: str
    heading: str
    names: tuple[str, ...]  # top-level payload field names, in the order shown
    core: bool = False  # always shown; otherwise folded (<details>) unless a field in it has an error
    hint: str = ""


_TAGS = SectionSpec(
    "tags",
    "More tags",
    ("sectors", "technologies", "use_cases"),
    hint="Sectors, technologies and use cases help people find the record.",
)
_CONSENT = SectionSpec("consent", "Consent", ("consent",))

SECTIONS: dict[str, tuple[SectionSpec, ...]] = {
    "organisation": (
        SectionSpec(
            "about",
            "The organisation",
            ("legal_name", "national_name", "country", "website", "org_type", "sme"),
            core=True,
        ),
        SectionSpec(
            "expertise",
            "Expertise",
            ("fields_of_activity", "domains", "subdomains", "description", "keywords"),
            core=True,
        ),
        _TAGS,
        SectionSpec(
            "identifiers",
            "Identifiers",
            ("identifiers", "registration"),
            hint="PIC, VAT, ROR or the national registration number.",
        ),
        SectionSpec(
            "contact",
            "Address and contact",
            ("address", "general_email", "phone", "contact"),
            hint="Shown to the network only, never to anonymous readers.",
        ),
        SectionSpec(
            "eligibility",
            "Ownership and eligibility",
            ("headquarters", "subsidiaries", "majority_owned_outside_eu", "exclusion_declaration"),
        ),
        SectionSpec(
            "membership",
            "Community membership",
            ("membership",),
            hint="Set by the National Coordination Centre's assessment.",
        ),
        _CONSENT,
    ),
    "expert": (
        SectionSpec(
            "about",
            "The expert",
            ("name", "country", "affiliation", "orcid", "languages", "email"),
            core=True,
        ),
        SectionSpec(
            "expertise", "Expertise", ("roles", "domains", "subdomains", "description", "keywords"), core=True
        ),
        _TAGS,
        _CONSENT,
    ),
    "project": (
        SectionSpec(
            "about",
            "The project",
            ("grant_id", "acronym", "title", "programme", "call", "topic", "start_date", "end_date", "doi"),
            core=True,
        ),
        SectionSpec(
            "expertise",
            "Objective and expertise",
            ("objective", "domains", "subdomains", "keywords"),
            core=True,
        ),
        _TAGS,
        SectionSpec(
            "funding",
            "Funding and partners",
            ("total_cost", "eu_contribution", "coordinator", "participants"),
        ),
    ),
    "facility": (
        SectionSpec("about", "The facility", ("name", "operator", "country", "website"), core=True),
        SectionSpec(
            "expertise",
            "Expertise",
            ("description", "capabilities", "domains", "subdomains", "keywords"),
            core=True,
        ),
        _TAGS,
        SectionSpec("access", "Access conditions", ("access",)),
        SectionSpec(
            "location",
            "Location and contact",
            ("location", "contact"),
            hint="The contact person is shown to the network only.",
        ),
    ),
}
OTHER = SectionSpec("other", "Other details", ())


@dataclass(frozen=True)
class Section:
    key: str
    heading: str
    hint: str
    fields: tuple[Field, ...]
    core: bool
    open: bool  # a folded section with an error in it is shown open
    errors: int  # fields with an error in this section
    filled: int  # fields with a value in this section

    @property
    def dom_id(self) -> str:
        return f"section-{self.key}"


def _filled(value: Any) -> bool:
    return value not in (None, "", [], {})


def sections(
    rtype: str, fields: tuple[Field, ...], values: Mapping[str, Any], errors: Mapping[str, Any]
) -> list[Section]:
    """The form of ``rtype`` (the application form: ``organisation``) in sections, each holding the
    fields of ``fields`` it names; sections with none of them are left out."""
    by_name = {f.pointer.removeprefix("/"): f for f in fields}
    placed: set[str] = set()
    out: list[Section] = []
    specs = SECTIONS.get(rtype, ())
    for spec in (*specs, OTHER):
        names = spec.names if spec is not OTHER else tuple(n for n in by_name if n not in placed)
        own = tuple(by_name[n] for n in names if n in by_name and n not in placed)
        placed.update(f.pointer.removeprefix("/") for f in own)
        if not own:
            continue
        pointers = [p for f in own for p in fields_by_pointer((f,))]
        n_errors = sum(1 for p in pointers if p in errors)
        n_filled = sum(1 for p in pointers if _filled(values.get(p)))
        core = spec.core or any(f.required for f in own)
        out.append(
            Section(spec.key, spec.heading, spec.hint, own, core, core or n_errors > 0, n_errors, n_filled)
        )
    return out
