"""Live federated query over real processes: a hub and three nodes, one of them hung.

DESIGN §6: ``live=true&timeout_ms=N`` also asks the nodes (query-only nodes always); results carry
``partial: true`` and the countries that did not answer in time, and a node that hangs never delays
the answer past the deadline.
"""

from __future__ import annotations

import os
import signal
import time
import urllib.parse
from collections.abc import Iterator

import pytest

from tests.e2e.harness import Cluster, Instance, cluster, organisation, start_federation

pytestmark = pytest.mark.e2e

DEADLINE_MS = 1500


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, Instance, dict[str, Instance]]]:
    """One federation for the module (starting one is most of each test's time): each test puts back
    what it changes (a stopped node is started again)."""
    with cluster(tmp_path_factory.mktemp("live"), "sqlite") as c:
        hub, nodes = start_federation(c, ("DE", "FR", "EE"))
        hub.ncc("hub", "mode", "EE", "query-only")
        names = {"DE": "Quantenfeste Netze GmbH", "FR": "Réseaux Quantiques SAS", "EE": "Kvantvõrgud OÜ"}
        for cc, node in nodes.items():
            r = node.post("/api/v1/records", {"type": "organisation", "visibility": "public",
                                              "payload": organisation(cc, names[cc], "Lattice crypto pilot")},
                          token=node.token("editor"))
            assert r.status == 201, r.body
        hub.ncc("sync")
        yield c, hub, nodes


def search(hub: Instance, **params: str) -> tuple[dict, float]:
    start = time.monotonic()
    r = hub.get("/api/v1/search?" + urllib.parse.urlencode(params))
    assert r.status == 200, r.body
    return r.json(), time.monotonic() - start


def test_query_only_node_is_asked_and_never_replicated(federation: tuple[Cluster, Instance, dict]) -> None:
    _, hub, _ = federation
    assert hub.query("SELECT COUNT(*) FROM hub_records WHERE origin = 'EE'")[0][0] == 0
    body, _ = search(hub, q="lattice")
    origins = {r["origin"] for r in body["results"]}
    assert origins == {"DE", "FR", "EE"}
    ee = next(r for r in body["results"] if r["origin"] == "EE")
    assert ee["verified"] is False and ee["live"] is True
    assert body["partial"] is False and body["missing"] == []


@pytest.mark.serial  # asserts a wall-clock bound
def test_hung_node_is_reported_partial_within_the_deadline(federation: tuple[Cluster, Instance, dict]) -> None:
    _, hub, nodes = federation
    fr = nodes["FR"]
    assert fr.proc is not None
    os.kill(fr.proc.pid, signal.SIGSTOP)  # accepts connections (kernel backlog) but never answers
    try:
        body, elapsed = search(hub, q="lattice", live="true", timeout_ms=str(DEADLINE_MS))
    finally:
        os.kill(fr.proc.pid, signal.SIGCONT)
    assert elapsed < DEADLINE_MS / 1000 + 1.0, f"answer took {elapsed:.2f}s"
    assert body["partial"] is True
    assert body["missing"] == ["FR"]
    origins = {r["origin"] for r in body["results"]}
    # FR's record is still served from the hub's index; EE answered live; DE both
    assert origins == {"DE", "FR", "EE"}
    assert all(r["verified"] for r in body["results"] if r["origin"] in ("DE", "FR"))


@pytest.mark.serial  # asserts a wall-clock bound
def test_stopped_node_is_reported_partial(federation: tuple[Cluster, Instance, dict]) -> None:
    _, hub, nodes = federation
    nodes["DE"].stop()
    try:
        body, elapsed = search(hub, q="lattice", live="true", timeout_ms=str(DEADLINE_MS))
    finally:
        nodes["DE"].start()  # the federation is shared by the module's tests
    assert elapsed < DEADLINE_MS / 1000 + 1.0
    assert body["partial"] is True and body["missing"] == ["DE"]
    assert "DE" in {r["origin"] for r in body["results"]}  # the hub keeps serving what it has


def test_bad_timeout_is_invalid_parameter(federation: tuple[Cluster, Instance, dict]) -> None:
    _, hub, _ = federation
    r = hub.get("/api/v1/search?q=x&live=true&timeout_ms=abc")
    assert r.status == 400 and r.code == "invalid_parameter"
