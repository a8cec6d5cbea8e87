"""``ncc demo`` end to end: a hub and N nodes on loopback, enrolled, loaded, synced and searched.

Steps, each through the code path an operator would use:

1. ``ncc init`` for the hub and every node (free ports found by binding port 0);
2. user tokens as ``ncc token create`` makes them (hub analyst and admin, an editor per node) and
   one invitation per node as ``ncc hub invite`` makes it;
3. ``ncc serve`` for every instance, as child processes;
4. ``ncc enroll`` for every node (the node posts its key and proof to the running hub);
5. the synthetic dataset through each node's ``POST /api/v1/records`` with its editor token:
   organisations first on every node, then experts, projects and facilities pointing at them
   (projects across borders);
6. ``POST /api/v1/sync`` on the hub (what ``ncc sync`` does, in the hub's own process) until every
   node is pulled to its head;
7. searches through the hub's ``GET /api/v1/search``; the envelopes shown are fetched from the hub
   and their signatures checked here, against the hub's signed directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import aiohttp

from node.config import Settings, child_environment, load_settings
from node.context import Keyring, utc_now
from node.demo import dataset, processes
from node.demo.countries import DEMO_ORDER
from node.demo.processes import DemoError, Instance
from node.demo.report import Reporter

TOKEN_TTL_S = 7 * 86400
MAX_IN_FLIGHT = 4  # concurrent writes per node: hides HTTP latency, SQLite serialises the rest


@dataclass
class DemoOptions:
    """What ``ncc demo`` was asked for."""

    nodes: int = 3
    records: int = 60
    seed: int = 887
    data_dir: Path | None = None
    once: bool = False

    def countries(self) -> list[str]:
        return list(DEMO_ORDER[: self.nodes])


@dataclass
class Demo:
    """One demo run: its instances, tokens and what was loaded."""

    options: DemoOptions
    out: Callable[[str], None] = print
    root: Path = field(init=False)
    hub: Instance = field(init=False)
    nodes: list[Instance] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)  # "hub:analyst", "hub:admin", "DE:editor", …
    invites: dict[str, str] = field(default_factory=dict)
    loaded: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # country -> [{id, type, visibility}]
    pages: list[str] = field(default_factory=list)  # portal pages that answered (HTML)
    _temporary: bool = False

    @property
    def instances(self) -> list[Instance]:
        return [self.hub, *self.nodes]

    # -- 1, 2: instances, tokens, invitations ----------------------------------------------------

    def prepare(self) -> None:
        """Create the data dirs, initialise every instance, issue tokens and invitations.

        Raises:
            DemoError: the data dir is not empty, or an instance cannot be initialised.
        """
        if self.options.data_dir is None:
            self.root = Path(tempfile.mkdtemp(prefix="ncc-demo-"))
            self._temporary = True
        else:
            self.root = self.options.data_dir.resolve()
            if self.root.exists() and any(self.root.iterdir()):
                raise DemoError(f"--data-dir {self.root} is not empty (the demo creates fresh instances)")
            self.root.mkdir(parents=True, exist_ok=True)
        countries = self.options.countries()
        ports = processes.free_ports(len(countries) + 1)
        self.hub = Instance("hub", "hub", self.root / "hub", ports[0])
        self.nodes = [Instance(c, "node", self.root / c.lower(), p) for c, p in zip(countries, ports[1:], strict=True)]
        for inst in self.instances:
            _init(inst)
        hub_settings = _settings(self.hub)
        self.tokens["hub:analyst"] = _issue_token(hub_settings, "analyst", "demo analyst")
        self.tokens["hub:admin"] = _issue_token(hub_settings, "admin", "demo admin")
        for node in self.nodes:
            self.tokens[f"{node.name}:editor"] = _issue_token(_settings(node), "editor", f"demo editor {node.name}")
            # the dataset stands for an existing registry, statuses included: admins may bring those in
            # (editors may not set membership, DESIGN §12)
            self.tokens[f"{node.name}:admin"] = _issue_token(_settings(node), "admin", f"demo admin {node.name}")
        first = self.nodes[0]
        self.tokens[f"{first.name}:assessor"] = _issue_token(_settings(first), "assessor", f"demo assessor {first.name}")
        self.invites = _invite(hub_settings, countries)

    # -- 3, 4: processes, enrollment -------------------------------------------------------------

    def start(self) -> None:
        """Start ``ncc serve`` for every instance and wait until all are ready."""
        env = child_environment()
        for inst in self.instances:
            processes.start(inst, env)
        # Each start costs about a second of CPU (imports, migrations check): 28 instances on 2 cores
        # need far longer than 4 do.
        processes.wait_ready(self.instances, timeout=30.0 + 4.0 * len(self.instances))

    def enroll(self) -> int:
        """Enroll every node with the running hub; return the hub's directory serial."""
        serial = 0
        for node in self.nodes:
            serial = _enroll(_settings(node), self.hub.url, self.invites[node.name])
        return serial

    # -- 5, 6: records, sync ----------------------------------------------------------------------

    async def load(self, http: aiohttp.ClientSession) -> None:
        """Publish the dataset on every node: organisations first, then what points at them."""
        n, seed = self.options.records, self.options.seed
        firsts = await asyncio.gather(*(
            self._post_all(http, node, dataset.organisations(seed, node.name, n)) for node in self.nodes
        ))
        org_ids = {node.name: [r["id"] for r in rows if r["visibility"] != "national"]
                   for node, rows in zip(self.nodes, firsts, strict=True)}
        seconds = await asyncio.gather(*(
            self._post_all(http, node, dataset.dependents(seed, node.name, n, org_ids)) for node in self.nodes
        ))
        for node, a, b in zip(self.nodes, firsts, seconds, strict=True):
            self.loaded[node.name] = a + b

    async def _post_all(self, http: aiohttp.ClientSession, node: Instance,
                        items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        gate = asyncio.Semaphore(MAX_IN_FLIGHT)
        headers = {"Authorization": f"Bearer {self.tokens[node.name + ':admin']}"}

        async def post(item: dict[str, Any]) -> dict[str, Any]:
            async with gate, http.post(node.url + "/api/v1/records", json=item, headers=headers) as r:
                body = await r.json(content_type=None)
                if r.status != 201:
                    detail = body.get("detail") if isinstance(body, dict) else body
                    raise DemoError(f"{node.name} refused a {item['type']} record: HTTP {r.status} {detail}")
                return {"id": body["id"], "type": item["type"], "visibility": item["visibility"]}

        return list(await asyncio.gather(*(post(item) for item in items)))

    async def sync(self, http: aiohttp.ClientSession, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Have the hub pull every node until each is at its feed head; return ``/api/v1/nodes``.

        Raises:
            DemoError: a pull failed or the hub did not catch up in time.
        """
        headers = {"Authorization": f"Bearer {self.tokens['hub:admin']}"}
        deadline = time.monotonic() + timeout
        while True:
            async with http.post(self.hub.url + "/api/v1/sync", headers=headers) as r:
                body = await r.json(content_type=None)
                if r.status != 200:
                    raise DemoError(f"hub sync failed: HTTP {r.status} {body}")
            failed = [f"{x['country']}: {x['error']}" for x in body["results"] if not x["ok"]]
            async with http.get(self.hub.url + "/api/v1/nodes") as r:
                nodes: list[dict[str, Any]] = await r.json()
            if not failed and all(n["lag"] == 0 and n["last_success"] for n in nodes):
                return nodes
            if time.monotonic() > deadline:
                raise DemoError("hub did not catch up: " + ("; ".join(failed) or str(nodes)))
            await asyncio.sleep(0.3)

    async def application(self, http: aiohttp.ClientSession, timeout: float = 30.0) -> dict[str, Any]:
        """DESIGN §12 on the first node: an organisation applies, confirms with the link of the mail the
        node wrote to its outbox, an assessor assesses and registers it; return what happened.

        Raises:
            DemoError: a step was refused, or the mail did not appear in time.
        """
        import email
        import email.policy
        import re

        node = self.nodes[0]
        body = {"type": "organisation", "visibility": "public", "accept_terms": True,
                "applicant": {"name": "Erika Demo", "email": f"erika@applicant.{node.name.lower()}.example"},
                "payload": dataset.application_payload(node.name)}
        async with http.post(node.url + "/api/v1/applications", json=body) as r:
            answer = await r.json(content_type=None)
            if r.status != 202:
                raise DemoError(f"{node.name} refused the demo application: HTTP {r.status} {answer}")
        app_id = answer["id"]
        outbox = node.data_dir / "outbox"
        link = re.compile(rf"^\S+/apply/{app_id}\?token=(\S+)$", re.MULTILINE)
        deadline = time.monotonic() + timeout
        token = None
        while token is None:
            for path in sorted(outbox.glob("*.eml")) if outbox.exists() else []:
                msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                text = str(msg.get_body(preferencelist=("plain",)).get_content())  # type: ignore[union-attr]
                found = link.search(text.replace("\r\n", "\n"))
                if found:
                    token = found.group(1)
            if token is None:
                if time.monotonic() > deadline:
                    raise DemoError(f"no confirmation mail in {outbox}")
                await asyncio.sleep(0.2)
        async with http.post(f"{node.url}/api/v1/applications/{app_id}/confirm", json={"token": token}) as r:
            confirmed = await r.json(content_type=None)
            if r.status != 200:
                raise DemoError(f"confirmation refused: HTTP {r.status} {confirmed}")
        rid = confirmed["record_id"]
        headers = {"Authorization": f"Bearer {self.tokens[node.name + ':assessor']}"}
        steps = ["applied"]
        for status in ("assessed", "registered"):
            async with http.post(f"{node.url}/api/v1/records/{rid}/decisions", json={"status": status},
                                 headers=headers) as r:
                if r.status != 201:
                    raise DemoError(f"decision {status} refused: HTTP {r.status} {await r.text()}")
            steps.append(status)
        while len(list(outbox.glob("*.eml"))) < 4 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)  # confirmation, received, assessed, registered
        return {"id": rid, "steps": steps, "mails": len(list(outbox.glob("*.eml"))), "outbox": outbox,
                "name": body["payload"]["legal_name"]}

    async def find_portal(self, http: aiohttp.ClientSession) -> None:
        """Note which web pages the instances serve (the portal is optional to the demo)."""
        first = self.nodes[0]
        for url in (f"{self.hub.url}/", f"{self.hub.url}/status", f"{first.url}/admin/records"):
            try:
                async with http.get(url, allow_redirects=False) as r:
                    # 200 with HTML, or 303 to the sign-in page for the admin pages
                    if (r.status == 200 and r.content_type == "text/html") or r.status == 303:
                        self.pages.append(url)
            except aiohttp.ClientError:
                pass

    # -- clean-up ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop every child process; remove the data dir if the demo made it."""
        processes.stop([i for i in self.instances_started()])
        if self._temporary:
            shutil.rmtree(self.root, ignore_errors=True)

    def instances_started(self) -> Iterator[Instance]:
        hub = getattr(self, "hub", None)
        for inst in ([hub] if hub is not None else []) + self.nodes:
            if inst.process is not None:
                yield inst


def run_demo(options: DemoOptions, out: Callable[[str], None] = print) -> int:
    """Run the whole demo; serve until Ctrl-C (or return at once with ``options.once``).

    Raises:
        DemoError: a step failed (children are stopped and the temporary dir removed first).
    """
    demo = Demo(options, out)
    report = Reporter(out)
    # Ctrl-C and SIGTERM both stop the demo cleanly, also when started with SIGINT ignored
    # (a background job of a non-interactive shell inherits that).
    previous = {sig: signal.signal(sig, _raise_interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        started = time.monotonic()
        demo.prepare()
        report.header(demo)
        report.step("initialised", f"hub and {len(demo.nodes)} nodes in {demo.root}", started)
        t = time.monotonic()
        demo.start()
        report.step("started", ", ".join(f"{i.name} pid {i.process.pid}" for i in demo.instances if i.process), t)
        t = time.monotonic()
        serial = demo.enroll()
        report.step("enrolled", f"{', '.join(n.name for n in demo.nodes)} (directory serial {serial})", t)
        asyncio.run(_online(demo, report, started))
        report.access(demo, once=options.once)
        if options.once:
            return 0
        out("Serving; press Ctrl-C to stop.")
        while True:
            gone = processes.exited(demo.instances)
            if gone is not None:
                raise DemoError(f"{gone.name} stopped unexpectedly (exit {gone.process and gone.process.returncode}): "
                                f"{gone.log_tail(3)}")
            time.sleep(0.5)
    except KeyboardInterrupt:
        out("Stopping …")
        return 0
    finally:
        demo.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


async def _online(demo: Demo, report: Reporter, started: float) -> None:
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        t = time.monotonic()
        await demo.load(http)
        report.loaded(demo, t)
        t = time.monotonic()
        nodes = await demo.sync(http)
        report.synced(demo, nodes, t)
        t = time.monotonic()
        applied = await demo.application(http)
        await demo.sync(http)
        report.step("applied", f"{applied['name']}: {' → '.join(applied['steps'])}, published to the hub; "
                    f"{applied['mails']} mails written to {applied['outbox']}", t)
        report.step("ready", f"federation up and synced in {time.monotonic() - started:.1f} s", None)
        await report.searches(demo, http)
        await demo.find_portal(http)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


# -- the CLI code paths, in this process ----------------------------------------------------------


def _settings(inst: Instance) -> Settings:
    # env={}: the demo's instances are configured by their config.toml alone (see child_environment).
    return load_settings(inst.data_dir, env={})


def _init(inst: Instance) -> None:
    """``ncc init`` for one instance (its summary line is not printed)."""
    from node.cli import main

    argv = ["init", "--role", inst.role, "--data-dir", str(inst.data_dir), "--port", str(inst.port),
            "--host", inst.host]
    if inst.role == "node":
        argv += ["--country", inst.name]
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(argv)
    if code != 0:
        raise DemoError(f"ncc init {inst.name} failed: {err.getvalue().strip()}")
    if inst.role == "hub":
        # the demo's nodes listen on loopback, which a hub refuses by default (DESIGN §10)
        with (inst.data_dir / "config.toml").open("a") as fh:
            fh.write("# The demo's nodes listen on loopback.\nallow_private_node_urls = true\n")


def _issue_token(settings: Settings, role: str, subject: str) -> str:
    """A user token, issued and recorded as ``ncc token create`` does."""
    from node.commands.base import run_with_db
    from node.services.usertokens import issue_and_record

    key = Keyring(settings).current

    async def store() -> str:
        issued = await issue_and_record(key, settings.instance_id, role, subject, utc_now(), TOKEN_TTL_S)
        return issued.token

    return run_with_db(settings, store)


def _invite(settings: Settings, countries: list[str]) -> dict[str, str]:
    """One invitation per country, as ``ncc hub invite`` makes them."""
    from node.commands.base import run_with_db
    from node.services.hub import HubService

    hub = HubService(settings, Keyring(settings).key, utc_now)

    async def work() -> dict[str, str]:
        return {c: await hub.invite(c) for c in countries}

    return run_with_db(settings, work)


def _enroll(settings: Settings, hub_url: str, token: str) -> int:
    """``ncc enroll`` for one node; return the directory serial the hub answered with.

    Raises:
        DemoError: the hub refused.
    """
    from node.commands.base import run_with_db
    from node.services.nodefed import FederationError, NodeFederation

    fed = NodeFederation(settings, Keyring(settings).key, utc_now)

    async def work() -> dict[str, Any]:
        try:
            return await fed.enroll(hub_url, token)
        except FederationError as exc:
            raise DemoError(f"enrolling {settings.country} failed: {exc}") from exc
        finally:
            await fed.close()

    return int(run_with_db(settings, work)["serial"])
