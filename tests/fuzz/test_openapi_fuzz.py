"""Schemathesis against each role's OpenAPI document, sent to real ``ncc serve`` processes.

Every operation of the node (DE) and the hub is fuzzed with a valid token for it (the node's
``admin`` user token, the hub's ``admin`` user token, or a fresh service token of the peer on
federation routes), then the operations anonymous readers may call are fuzzed again without one.
All of schemathesis' checks run: no 5xx, documented status codes, content types and response
schemas, schema-valid requests accepted, schema-violating ones refused (4xx), auth enforced.

The document is built in this process (schemathesis turns every operation into a pytest item at
collection, before any server runs); :func:`test_fuzzed_documents_are_the_served_ones` proves it
is the one each process serves at ``/openapi.json``. Generation is deterministic (fixed seed, no
example database): CI reruns exactly the same requests. ``NCC_FUZZ_EXAMPLES`` (default 25) sets the
examples per operation of the fuzzing phase (the coverage and examples phases always run whole);
``NCC_FUZZ_SEED`` explores other inputs.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from schemathesis import Case

from node.config import build_settings
from node.http.openapi import build_openapi
from tests.e2e.harness import Instance, http
from tests.fuzz.conftest import Federation, service_token

pytestmark = [pytest.mark.fuzz, pytest.mark.e2e]

MAX_EXAMPLES = int(os.environ.get("NCC_FUZZ_EXAMPLES", "25"))
SEED = int(os.environ.get("NCC_FUZZ_SEED", "20261127"))  # another seed explores other inputs


#: Schema-valid requests may still be refused for what an OpenAPI document cannot say: a payload
#: checked against the record's JSON Schema and vocabularies, a lone surrogate or an integer beyond
#: 2^53 in a JSON body (422 ``schema_invalid`` / ``canonicalization_error``), a version conflict.
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "410", "422",
            # a rate limit refuses valid requests too (notifications per node, service calls per caller)
            "429"]
#: Schema-violating requests must be refused: schemathesis' list, plus 410 (a deleted record is
#: gone whatever else the request says) and 413.
REFUSED = ["400", "401", "403", "404", "405", "406", "409", "410", "413", "415", "422", "428", "429"]


def config(document: dict[str, Any]) -> schemathesis.Config:
    # A cursor is opaque (only a next_cursor is valid): any other string is rightly a 400.
    with_cursor = sorted(op["operationId"] for ops in document["paths"].values() for op in ops.values()
                         if "cursor" in inputs(document, op))
    return schemathesis.Config.from_dict({
        "seed": SEED,
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
        "phases": {"stateful": {"enabled": False}},
        "checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED},
                   "negative_data_rejection": {"expected-statuses": REFUSED}},
        "operations": [{"include-operation-id": with_cursor,
                        "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "400"]}}},
                       # a feed anchor's four parameters go together, which OpenAPI cannot say: one of them
                       # alone is rightly a 400
                       # (and a required query parameter sent empty, `version=`, is a missing one: 400)
                       # the consortium builder needs one tag of four optional parameters, each a
                       # vocabulary id, and min_countries <= size: also beyond what OpenAPI says
                       {"include-operation-id": ["changes-head", "log-inclusion", "log-consistency",
                                                 "log-entries", "consortia", "portal-consortia"],
                        "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "400"]}}}],
    })


def inputs(document: dict[str, Any], op: dict[str, Any]) -> set[str]:
    """Names of an operation's parameters and top-level body members."""
    names = {p["name"] for p in op.get("parameters", [])}
    for media in op.get("requestBody", {}).get("content", {}).values():
        ref = media["schema"].get("$ref", "").rsplit("/", 1)[-1]
        names |= set(document["components"]["schemas"].get(ref, {}).get("properties", {}))
    return names


def document(role: str) -> dict[str, Any]:
    settings = build_settings(Path("unused"), {"role": role, "country": "DE" if role == "node" else ""})
    return build_openapi(settings)


def load(role: str, *, anonymous: bool = False) -> Any:
    """The role's document with an auth provider that marks each request ``user`` or ``service``.

    Schemathesis builds its coverage cases while pytest collects, before any process runs (and a
    service token lives two minutes and is accepted once), so the provider only writes a
    placeholder; :func:`authorise` swaps in a real token just before the request is sent.
    """
    doc = document(role)
    schema = schemathesis.openapi.from_dict(doc, config=config(doc))

    @schema.hook
    def filter_failure(context: Any, failure: Any, case: Case, response: Any) -> bool:
        return not (failure.code == "ST201" and only_wire_identical_mutations(case))

    if anonymous:  # again without a token, where one is optional (what anonymous readers may see)
        return schema.exclude(lambda ctx: not token_optional(ctx.operation.definition.raw))

    @schema.auth(refresh_interval=None)
    class Placeholder:
        def get(self, case: Case, context: Any) -> str | None:
            raw = case.operation.definition.raw
            if not raw.get("security"):
                return None
            return SERVICE if "federation" in (raw.get("tags") or []) else USER

        def set(self, case: Case, data: str, context: Any) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    return schema


def token_optional(operation: dict[str, Any]) -> bool:
    security = operation.get("security") or []
    return {} in security and len(security) > 1


def only_wire_identical_mutations(case: Case) -> bool:
    """Whether a "schema-violating request accepted" (ST201) case was only invalid before it was
    serialized: schemathesis 4.32 mutates a query value into something that reaches the server as a
    valid one — an empty object is sent as an empty value (allowed: "not given"), and a boolean or
    number in a repeatable filter (array of strings) is sent as one string item. Anything else the
    case negated keeps the failure."""
    from schemathesis.core.parameters import ParameterLocation
    from schemathesis.generation.meta import negated_parameters

    negated = list(negated_parameters(case.meta))
    if not negated or any(location is not ParameterLocation.QUERY for _, location in negated):
        return False
    declared = {p["name"]: p["schema"] for p in case.operation.definition.raw.get("parameters", [])}
    for name, _ in negated:
        value = (case.query or {}).get(name)
        if value == {}:
            continue
        if declared.get(name, {}).get("type") == "array" and not isinstance(value, (dict, list)):
            continue
        return False
    return True


SERVICE, USER = "placeholder-service-token", "placeholder-user-token"


#: A well-formed CSRF token (43 base64url characters), sent as the ncc_csrf cookie and in every form.
CSRF = "fuzz-csrf-token-fuzz-csrf-token-fuzz-csrf-t"


def authorise(case: Case, target: Instance, caller: Instance) -> None:
    """Make the request get past authentication and CSRF, so the fuzzer reaches the handlers.

    The placeholder bearer token (if any) becomes a valid one for ``target``; a portal form gets
    the CSRF token its cookie carries (as a browser that loaded the form would send).
    """
    header = (case.headers or {}).get("Authorization", "")
    if header == f"Bearer {SERVICE}":
        audience = "hub" if target.role == "hub" else f"node:{target.country}"
        case.headers["Authorization"] = f"Bearer {service_token(caller, audience)}"
    elif header == f"Bearer {USER}":
        case.headers["Authorization"] = f"Bearer {target.token('admin')}"
    if isinstance(case.body, dict) and "csrf" in case.body:
        case.body["csrf"] = CSRF
        case.cookies = {**(case.cookies or {}), "ncc_csrf": CSRF}


def aim_at_real_records(case: Case, records: list[str]) -> None:
    """Send half of the requests naming a record id (chosen by the generated id, so the run stays
    deterministic) to a record that exists: a random id only ever reaches the 404 path. Cases
    whose path is meant to be invalid keep it."""
    from schemathesis.core.parameters import ParameterLocation

    rid = (case.path_parameters or {}).get("id")
    if not isinstance(rid, str) or (case.meta is not None and case.meta.is_negative_at(ParameterLocation.PATH)):
        return
    pick = zlib.crc32(rid.encode())
    if pick % 2:
        case.path_parameters["id"] = records[pick // 2 % len(records)]


def call(case: Case, target: Instance, caller: Instance, records: list[str]) -> None:
    authorise(case, target, caller)
    aim_at_real_records(case, records)
    # the operation's own answer is checked: a portal redirect (303 to /login) is not followed
    case.call_and_validate(base_url=target.url, allow_redirects=False)


node_schema, node_anonymous = load("node"), load("node", anonymous=True)
hub_schema, hub_anonymous = load("hub"), load("hub", anonymous=True)


@node_schema.parametrize()
def test_node_api(case: Case, federation: Federation) -> None:
    call(case, federation.node, federation.hub, federation.records)


@hub_schema.parametrize()
def test_hub_api(case: Case, federation: Federation) -> None:
    call(case, federation.hub, federation.node, federation.records)


@node_anonymous.parametrize()
def test_node_api_anonymous(case: Case, federation: Federation) -> None:
    call(case, federation.node, federation.hub, federation.records)


@hub_anonymous.parametrize()
def test_hub_api_anonymous(case: Case, federation: Federation) -> None:
    call(case, federation.hub, federation.node, federation.records)


@pytest.mark.parametrize("role", ["node", "hub"])
def test_fuzzed_documents_are_the_served_ones(federation: Federation, role: str) -> None:
    inst = federation.node if role == "node" else federation.hub
    served = http("GET", inst.url + "/openapi.json").json()
    assert served["servers"] == [{"url": inst.url}]
    assert {**served, "servers": None} == {**document(role), "servers": None}
