"""Fixtures of the fuzz suite: a real hub and a real DE node (``ncc serve`` on free loopback ports).

One federation per session: ``ncc init`` both, ``ncc serve`` both, enroll the node, create a few
records so the hub has something to search. Schemathesis reads each role's ``/openapi.json`` from
the running process and sends its requests there over HTTP, so what is fuzzed is exactly what an
operator runs (middleware, body limits, problem mapping, the database) — nothing is mocked.

Tokens: user tokens from ``ncc token create`` (node ``admin``, hub ``admin``); federation routes
need a *fresh* service token per request (their ``jti`` is never accepted twice), which the auth
provider mints with the calling instance's key, as the hub or the node would.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from federation.tokens import issue_service_token
from node.context import utc_now
from node.keystore import load_key
from tests.conftest import drop_pg_database, make_pg_database, pg_problem
from tests.e2e.harness import Cluster, Instance, enroll, organisation


@dataclass
class Federation:
    hub: Instance
    node: Instance
    #: Ids of the records created at the start (the fuzzer aims some of its requests at them).
    records: list[str] = field(default_factory=list)


CONTACT = {"first_name": "Erika", "family_name": "Mustermann", "email": "erika@fuzz.example.de"}


def service_token(caller: Instance, audience: str) -> str:
    """A service token as ``caller`` would sign it (``iss`` its country, or ``hub``)."""
    key = load_key(caller.data_dir / "keys" / "instance.pem", caller.role, caller.country)
    issuer = "hub" if caller.role == "hub" else caller.country
    return issue_service_token(key.private_key, key.kid, issuer, audience, utc_now(), ttl_s=120)


@pytest.fixture(scope="package")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    """A hub (SQLite) and a DE node (PostgreSQL when reachable, so both backends meet the fuzzer).

    For this package's tests only, not the session: a live PostgreSQL test database holds the server
    lock shared (tests/conftest.py), and the fault test that restarts the server waits until no worker
    holds one — held for the rest of the session, it waited out its 10-minute timeout."""
    root = tmp_path_factory.mktemp("fuzz")
    created: list[str] = []

    def make_db(name: str) -> str:
        if name == "de" and pg_problem() is None:
            db_name, url = make_pg_database()
            created.append(db_name)
            return url
        return f"sqlite://{root / name / 'ncc.db'}"

    fed = Cluster(root, make_db)
    try:
        hub = fed.add("hub", "hub")
        node = fed.add("de", "node", "DE")
        hub.start()
        node.start()
        enroll(hub, node)
        records = []
        for i, visibility in enumerate(("public", "public", "network", "national")):
            payload = organisation("DE", f"Fuzz Seed {i} GmbH", "Post-quantum cryptography for energy grids.")
            if i == 1:
                payload["contact"] = CONTACT  # restricted: removed for anonymous readers
            created_record = node.post("/api/v1/records", {"type": "organisation", "visibility": visibility,
                                                          "payload": payload}, token=node.token("admin"))
            assert created_record.status == 201, created_record.body
            records.append(created_record.json()["id"])
        assert hub.post("/api/v1/sync", token=hub.token("admin")).status == 200
        yield Federation(hub, node, records)
    finally:
        fed.close()
        for db_name in created:
            with contextlib.suppress(Exception):
                drop_pg_database(db_name)
