"""Generate ``schemas/vocabularies/*.json`` from the shared reference ``vocabulary.json``.

Developer tool: the output is committed, so the project never reads ``../shared`` at run or test
time. Each output file is itself a JSON Schema (Draft 2020-12) that accepts exactly the vocabulary's
ids, with the terms (labels copied verbatim, Atlas UUIDs kept for export) under ``x-ncc-terms``.

Usage::

    python scripts/gen_vocabularies.py [VOCABULARY_JSON] [--out DIR]

``VOCABULARY_JSON`` defaults to ``../shared/reference/vocabulary.json`` relative to the repository
root; ``--out`` defaults to ``schemas/vocabularies`` in the repository.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = REPO_ROOT / ".." / "shared" / "reference" / "vocabulary.json"
DEFAULT_OUT = REPO_ROOT / "schemas" / "vocabularies"
ID_BASE = "https://schemas.ncc-federation.eu/vocab"
DRAFT = "https://json-schema.org/draft/2020-12/schema"

# Codes EU sources (CORDIS, VAT) use instead of ISO 3166-1: map them at import/export.
EU_CODE_ALIASES = {"EL": "GR", "UK": "GB"}

Term = dict[str, Any]


def _term(source: dict[str, Any], *, id_key: str = "id", label_key: str = "label") -> Term:
    """Copy one term, keeping the label exactly and the Atlas UUID when the source has one."""
    term: Term = {"id": source[id_key], "label": source[label_key]}
    if "atlas_uuid" in source:
        term["atlas_uuid"] = source["atlas_uuid"]
    return term


def build_terms(source: dict[str, Any]) -> dict[str, tuple[list[Term], dict[str, Any]]]:
    """Map each vocabulary name to its terms and extra top-level ``x-ncc-*`` annotations.

    Raises ``KeyError`` when the source lacks an expected list.
    """
    domains_src = source["knowledge_domains"]
    domains: list[Term] = []
    subdomains: list[Term] = []
    for dom in domains_src["terms"]:
        term = _term(dom)
        if "jrc_report_label" in dom:
            term["jrc_report_label"] = dom["jrc_report_label"]
        domains.append(term)
        for sub in dom["subdomains"]:
            sub_term = _term(sub)
            sub_term["parent"] = dom["id"]
            subdomains.append(sub_term)

    def simple(key: str) -> list[Term]:
        return [_term(t) for t in source[key]["terms"]]

    def meta(section: dict[str, Any]) -> dict[str, Any]:
        extra: dict[str, Any] = {"x-ncc-source-status": section["status"]}
        if "atlas_vocabulary" in section:
            extra["x-ncc-atlas-vocabulary"] = section["atlas_vocabulary"]
        return extra

    org_types = source["organisation_types"]
    countries_src = source["countries"]
    countries: list[Term] = []
    for group, entries in (
        ("eu", countries_src["eu_member_states"]),
        ("eea-efta", countries_src["eea_efta"]["terms"]),
    ):
        for entry in entries:
            term = _term(entry, id_key="iso3166_alpha2", label_key="name")
            if "eu_code" in entry:
                term["eu_code"] = entry["eu_code"]
            term["group"] = group
            countries.append(term)
    countries_meta = {
        "x-ncc-source-status": countries_src["status"] + " EEA/EFTA: " + countries_src["eea_efta"]["status"],
        "x-ncc-eu-code-aliases": EU_CODE_ALIASES,
    }

    return {
        "knowledge_domains": (domains, meta(domains_src)),
        "subdomains": (subdomains, meta(domains_src)),
        "sectors": (simple("sectors"), meta(source["sectors"])),
        "technologies": (simple("technologies"), meta(source["technologies"])),
        "use_cases": (simple("use_cases"), meta(source["use_cases"])),
        "fields_of_activity": (simple("fields_of_activity"), meta(source["fields_of_activity"])),
        "organisation_types": (
            [_term(t) for t in org_types["community_member_type"]["terms"]],
            meta(org_types["community_member_type"]),
        ),
        "cordis_activity_types": (
            [_term(t) for t in org_types["cordis_activity_type"]["terms"]],
            meta(org_types["cordis_activity_type"]),
        ),
        "ecsf_role_profiles": (simple("ecsf_role_profiles"), meta(source["ecsf_role_profiles"])),
        "countries": (countries, countries_meta),
    }


TITLES = {
    "knowledge_domains": ("Knowledge domain", "JRC cybersecurity taxonomy knowledge domain (15)."),
    "subdomains": (
        "Knowledge sub-domain",
        "JRC cybersecurity taxonomy sub-domain (150); `parent` is the domain.",
    ),
    "sectors": ("Sector", "JRC taxonomy sector."),
    "technologies": ("Technology", "JRC taxonomy technology."),
    "use_cases": ("Use case", "JRC taxonomy use case."),
    "fields_of_activity": ("Field of activity", "Field of expertise per Regulation (EU) 2021/887 Art. 8(3)."),
    "organisation_types": (
        "Organisation type",
        "Category of Community member per Regulation (EU) 2021/887 Art. 8(2).",
    ),
    "cordis_activity_types": (
        "CORDIS activity type",
        "CORDIS organization.csv activityType code; used only to map CORDIS imports.",
    ),
    "ecsf_role_profiles": (
        "ECSF role profile",
        "ENISA European Cybersecurity Skills Framework role profile.",
    ),
    "countries": (
        "Country",
        (
            "ISO 3166-1 alpha-2 code of an EU Member State or EEA/EFTA state. EU sources write EL for "
            "Greece (stored as GR) and UK for the United Kingdom (GB): see x-ncc-eu-code-aliases."
        ),
    ),
}


def build_documents(source: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return vocabulary name -> JSON Schema document.

    Raises ``ValueError`` on duplicate ids and ``KeyError`` when the source lacks a list.
    """
    documents: dict[str, dict[str, Any]] = {}
    for name, (terms, extra) in build_terms(source).items():
        ids = [t["id"] for t in terms]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate ids in vocabulary {name}")
        title, description = TITLES[name]
        documents[name] = {
            "$schema": DRAFT,
            "$id": f"{ID_BASE}/{name}/1",
            "title": title,
            "description": description,
            "type": "string",
            "enum": ids,
            "x-ncc-vocabulary": name,
            "x-ncc-source-version": source.get("version"),
            **extra,
            "x-ncc-terms": terms,
        }
    return documents


def render(document: dict[str, Any]) -> str:
    """Serialise one document the way it is committed (stable, UTF-8, trailing newline)."""
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def generate(source_path: Path, out_dir: Path) -> list[Path]:
    """Write every vocabulary document into ``out_dir`` and return the written paths.

    Raises ``OSError`` if the source cannot be read or the output written, ``ValueError`` on bad JSON.
    """
    source = json.loads(source_path.read_text(encoding="utf-8"))
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, document in build_documents(source).items():
        path = out_dir / f"{name}.json"
        path.write_text(render(document), encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    try:
        written = generate(args.source, args.out)
    except (OSError, ValueError, KeyError) as exc:
        print(f"gen_vocabularies: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
