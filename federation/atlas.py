"""The ECCC Atlas's data model: a registered organisation as a JSON:API ``node--cluster`` resource.

Pure: payload dicts and vocabularies in, JSON:API documents out. The Atlas is a Drupal site; its
field names (``title``, ``field_address``, ``field_cluster_thematic_area``, …) are those of the
Centre's registration form FORM-ECCC-001 as the Atlas stores it. Fields the organisation lacks are
left out, never invented; the representative (contact person) goes only with the organisation's
consent to share with the ECCC and the NCCs.

Relationships name taxonomy terms by the Atlas's own UUIDs. Knowledge domains and sub-domains carry
theirs in our vocabularies; every other taxonomy (country, organisation type, sectors, technologies,
use cases, fields of activity) is resolved against the terms the Atlas serves (:class:`TermIndex`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

RESOURCE_TYPE = "node--cluster"
MEDIA_TYPE = "application/vnd.api+json"
#: The Atlas's workflow state for an entry an NCC hands over (draft → ready_for_publication → published).
READY = "ready_for_publication"
DESCRIPTION_MAX = 800


class AtlasMappingError(Exception):
    """An organisation cannot be expressed in the Atlas's terms (a term the Atlas does not have)."""


@dataclass(frozen=True)
class Taxonomy:
    """One Atlas taxonomy an organisation refers to."""

    atlas_vocabulary: str  # jsonapi/taxonomy_term/<atlas_vocabulary>
    relationship: str  # the node--cluster relationship field
    many: bool
    payload_fields: tuple[str, ...]  # the payload fields holding our vocabulary ids
    vocabulary: str  # our vocabulary name (labels)


#: The taxonomies resolved against the Atlas's terms at push (matched by label; countries by ISO code).
RESOLVED: tuple[Taxonomy, ...] = (
    Taxonomy("country", "field_country", False, ("country",), "countries"),
    Taxonomy("cluster_type", "field_cluster_type", False, ("org_type",), "organisation_types"),
    Taxonomy("sectors", "field_sectors", True, ("sectors",), "sectors"),
    Taxonomy("technologies", "field_technologies", True, ("technologies",), "technologies"),
    Taxonomy("use_cases", "field_use_cases", True, ("use_cases",), "use_cases"),
    Taxonomy("fields_of_activity", "field_field_of_activity", True, ("fields_of_activity",), "fields_of_activity"),
)
#: Domains and sub-domains: UUIDs from our vocabularies, so the offline export has them too.
THEMATIC = Taxonomy("cluster_thematic_area", "field_cluster_thematic_area", True, ("domains", "subdomains"),
                    "knowledge_domains")
TAXONOMIES: tuple[Taxonomy, ...] = (THEMATIC, *RESOLVED)
ATLAS_VOCABULARIES: tuple[str, ...] = tuple(t.atlas_vocabulary for t in TAXONOMIES)


def term_type(atlas_vocabulary: str) -> str:
    """The JSON:API type of a term of this Atlas vocabulary (``taxonomy_term--sectors``)."""
    return f"taxonomy_term--{atlas_vocabulary}"


class Vocabularies:
    """Our vocabularies as the mapping needs them: labels and Atlas UUIDs by id."""

    def __init__(self, vocabularies: Mapping[str, Sequence[Mapping[str, Any]]]) -> None:
        self.labels: dict[str, dict[str, str]] = {
            name: {str(t["id"]): str(t["label"]) for t in terms} for name, terms in vocabularies.items()
        }
        self.uuids: dict[str, str] = {
            str(t["id"]): str(t["atlas_uuid"])
            for name in ("knowledge_domains", "subdomains")
            for t in vocabularies.get(name, ()) if t.get("atlas_uuid")
        }
        #: Greece is GR to us and EL in EU sources: the Atlas's ISO code may be either.
        self.country_aliases: dict[str, tuple[str, ...]] = {
            str(t["id"]): tuple(dict.fromkeys((str(t["id"]), str(t.get("eu_code") or t["id"]))))
            for t in vocabularies.get("countries", ())
        }

    def label(self, vocabulary: str, term_id: str) -> str:
        try:
            return self.labels[vocabulary][term_id]
        except KeyError:
            raise AtlasMappingError(f"{term_id} is not in our {vocabulary} vocabulary") from None


class TermIndex:
    """The Atlas's terms, by vocabulary: label → UUID (and ISO code → UUID for countries)."""

    def __init__(self, terms: Mapping[str, Iterable[Mapping[str, Any]]]) -> None:
        """``terms``: Atlas vocabulary name → JSON:API resources of ``taxonomy_term--<vocabulary>``."""
        self._by_name: dict[str, dict[str, str]] = {}
        self._by_iso: dict[str, str] = {}
        for vocabulary, resources in terms.items():
            names = self._by_name.setdefault(vocabulary, {})
            for resource in resources:
                rid, attributes = resource.get("id"), resource.get("attributes") or {}
                if not isinstance(rid, str) or not isinstance(attributes, Mapping):
                    continue
                name = attributes.get("name")
                if isinstance(name, str):
                    names.setdefault(_fold(name), rid)
                iso = attributes.get("field_iso_code")
                if vocabulary == "country" and isinstance(iso, str):
                    self._by_iso.setdefault(iso.upper(), rid)

    def uuid(self, taxonomy: Taxonomy, term_id: str, vocab: Vocabularies) -> str:
        """The Atlas UUID of one of our terms.

        Raises:
            AtlasMappingError: the Atlas has no such term.
        """
        if taxonomy.atlas_vocabulary == "country":
            for code in vocab.country_aliases.get(term_id, (term_id,)):
                if code in self._by_iso:
                    return self._by_iso[code]
            raise AtlasMappingError(f"the Atlas has no country with ISO code {term_id}")
        label = vocab.label(taxonomy.vocabulary, term_id)
        found = self._by_name.get(taxonomy.atlas_vocabulary, {}).get(_fold(label))
        if found is None:
            raise AtlasMappingError(f"the Atlas has no {taxonomy.atlas_vocabulary} term {label!r} ({term_id})")
        return found


def _fold(name: str) -> str:
    """Term names compare without case and surrounding or doubled spaces."""
    return " ".join(name.split()).casefold()


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, list) and value:  # e.g. a list of subsidiaries: one a line
        lines = [v if isinstance(v, str) else str(v.get("name", "")) if isinstance(v, Mapping) else str(v)
                 for v in value]
        return "\n".join(line for line in lines if line) or None
    return None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _obj(payload: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """A sub-object of the payload, or an empty one (absent or not an object)."""
    value = payload.get(key)
    return value if isinstance(value, Mapping) else {}


def attributes(payload: Mapping[str, Any], *, moderation_state: str = READY) -> dict[str, Any]:
    """The ``node--cluster`` attributes of an organisation payload (absent fields left out)."""
    out: dict[str, Any] = {"title": payload["legal_name"]}

    def put(key: str, value: Any) -> None:
        if value is not None:
            out[key] = value

    put("field_institution_name_in_nation", _text(payload.get("national_name")))
    if _text(payload.get("website")):
        out["field_url"] = {"uri": payload["website"]}
    address = _obj(payload, "address")
    country = address.get("country") or payload.get("country")
    if address:
        field_address = {"country_code": country}
        for ours, theirs in (("city", "locality"), ("street", "address_line1"), ("postcode", "postal_code")):
            if _text(address.get(ours)):
                field_address[theirs] = address[ours]
        out["field_address"] = field_address
    description = _text(payload.get("description"))
    put("field_field_of_activity_descr", description[:DESCRIPTION_MAX] if description else None)
    consent = _obj(payload, "consent")
    shares = _bool(consent.get("share_with_eccc_and_nccs"))
    put("field_data_sharing_consent", shares)
    identifiers = _obj(payload, "identifiers")
    put("field_registration_number", _text(identifiers.get("registration_number")))
    put("field_general_contact_e_mail", _text(payload.get("general_email")))
    put("field_phone_number", _text(payload.get("phone")))
    headquarters = _obj(payload, "headquarters")
    is_hq = _bool(headquarters.get("is_headquarters"))
    put("field_question_headquarter", is_hq)
    if is_hq is False:
        put("field_headquarter", _text(headquarters.get("parent")))
    subsidiaries = _obj(payload, "subsidiaries")
    has_subsidiaries = _bool(subsidiaries.get("in_other_member_states"))
    put("field_question_subsidiaries", has_subsidiaries)
    if has_subsidiaries:
        put("field_subsidiaries_eu", _text(subsidiaries.get("list")))
    majority = _obj(payload, "majority_owned_outside_eu")
    owned_outside = _bool(majority.get("value"))
    put("field_question_majority", owned_outside)
    if owned_outside:
        put("field_majority_shares_noneu", _text(majority.get("details")))
    put("field_article_136_compliance", _bool(payload.get("exclusion_declaration")))
    contact = _obj(payload, "contact")
    if shares and contact:  # the representative's personal data only with the organisation's consent
        for ours, theirs in (("first_name", "field_first_name"), ("family_name", "field_family_name"),
                             ("email", "field_e_mail"), ("position", "field_position"),
                             ("phone", "field_representative_phone_numbe")):
            put(theirs, _text(contact.get(ours)))
    out["moderation_state"] = moderation_state
    return out


def _relationship(taxonomy: Taxonomy, uuids: Sequence[str]) -> dict[str, Any]:
    items = [{"type": term_type(taxonomy.atlas_vocabulary), "id": u} for u in dict.fromkeys(uuids)]
    if taxonomy.many:
        return {"data": items}
    return {"data": items[0] if items else None}


def thematic_relationship(payload: Mapping[str, Any], vocab: Vocabularies) -> dict[str, Any]:
    """``field_cluster_thematic_area``: the organisation's domains and sub-domains by Atlas UUID."""
    ids = [*payload.get("domains", ()), *payload.get("subdomains", ())]
    missing = [i for i in ids if i not in vocab.uuids]
    if missing:
        raise AtlasMappingError(f"no Atlas UUID for {', '.join(missing)}")
    return _relationship(THEMATIC, [vocab.uuids[i] for i in ids])


def resolved_relationships(payload: Mapping[str, Any], vocab: Vocabularies, terms: TermIndex) -> dict[str, Any]:
    """The relationships that need the Atlas's own term UUIDs (every taxonomy but the thematic areas).

    Raises:
        AtlasMappingError: a term the Atlas does not have (that organisation fails, the others go on).
    """
    out: dict[str, Any] = {}
    for taxonomy in RESOLVED:
        ids: list[str] = []
        for name in taxonomy.payload_fields:
            value = payload.get(name)
            ids.extend([value] if isinstance(value, str) else [v for v in value or () if isinstance(v, str)])
        if ids or taxonomy.many:
            out[taxonomy.relationship] = _relationship(taxonomy, [terms.uuid(taxonomy, i, vocab) for i in ids])
    return out


def export_resource(payload: Mapping[str, Any], vocab: Vocabularies) -> dict[str, Any]:
    """The offline form (``ncc atlas export``): attributes and the thematic areas."""
    return {"type": RESOURCE_TYPE, "attributes": attributes(payload),
            "relationships": {THEMATIC.relationship: thematic_relationship(payload, vocab)}}


def push_resource(payload: Mapping[str, Any], vocab: Vocabularies, terms: TermIndex) -> dict[str, Any]:
    """The whole resource sent to the Atlas: every relationship resolved.

    Raises:
        AtlasMappingError: a term that cannot be resolved.
    """
    resource = export_resource(payload, vocab)
    resource["relationships"].update(resolved_relationships(payload, vocab, terms))
    return resource


def relationship_ids(relationship: Any) -> list[str]:
    """The term UUIDs of a JSON:API relationship object (one or many), in order."""
    data = relationship.get("data") if isinstance(relationship, Mapping) else None
    items = data if isinstance(data, list) else [data] if data else []
    return [str(i["id"]) for i in items if isinstance(i, Mapping) and "id" in i]


def changes(local: Mapping[str, Any], remote: Mapping[str, Any]) -> dict[str, Any]:
    """The PATCH body's ``attributes`` and ``relationships``: what the local resource says differently
    from the remote one (an attribute we no longer have is cleared with null). Empty when in sync."""
    out: dict[str, Any] = {}
    remote_attributes = remote.get("attributes") or {}
    local_attributes = local.get("attributes") or {}
    attrs = {k: v for k, v in local_attributes.items() if remote_attributes.get(k) != v}
    if remote_attributes.get("moderation_state") not in RESUBMIT_FROM:
        attrs.pop("moderation_state", None)  # the Centre's workflow moved on: never pull it back
    for key in KNOWN_ATTRIBUTES:
        if key not in local_attributes and remote_attributes.get(key) is not None:
            attrs[key] = None
    if attrs:
        out["attributes"] = attrs
    remote_relationships = remote.get("relationships") or {}
    rels = {k: v for k, v in (local.get("relationships") or {}).items()
            if sorted(relationship_ids(v)) != sorted(relationship_ids(remote_relationships.get(k)))}
    if rels:
        out["relationships"] = rels
    return out


#: Remote workflow states from which an update hands the entry over again (``ready_for_publication``);
#: from any other (published, to_be_rejected, rejected) the Centre's decision stands.
RESUBMIT_FROM = frozenset({None, "draft", "revision_requested", READY})

#: Every attribute this mapping writes: the only ones it may clear on the Atlas.
KNOWN_ATTRIBUTES: tuple[str, ...] = (
    "field_institution_name_in_nation", "field_url", "field_address", "field_field_of_activity_descr",
    "field_data_sharing_consent", "field_registration_number", "field_general_contact_e_mail",
    "field_phone_number", "field_question_headquarter", "field_headquarter", "field_question_subsidiaries",
    "field_subsidiaries_eu", "field_question_majority", "field_majority_shares_noneu",
    "field_article_136_compliance", "field_first_name", "field_family_name", "field_e_mail", "field_position",
    "field_representative_phone_numbe",
)
