"""The services of one running instance, built once by the app factory and shared by the views."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from federation.schemas import SchemaRegistry
from node.access import Access
from node.clock import utc_now
from node.config import Settings
from node.keystore import InstanceKey, load_compromised, load_key, load_retired
from node.services.publish import Publisher


@functools.cache
def build_registry() -> SchemaRegistry:
    """The schema registry over the packaged schemas, with the custom format checkers: one per process
    (the packaged schemas do not change while it runs, and a registry has no method that changes it;
    compiling every validator again cost ~12 ms at each app, command and test instance)."""
    from federation.formats import CUSTOM_FORMATS
    from schemas import load_schema_documents

    return SchemaRegistry(load_schema_documents(), formats=CUSTOM_FORMATS)


@dataclass
class Keyring:
    """The instance's current key and the retired ones (reloaded after `ncc keys rotate`)."""

    settings: Settings
    current: InstanceKey = field(init=False)
    retired: list[InstanceKey] = field(init=False)
    compromised: list[InstanceKey] = field(init=False)

    def __post_init__(self) -> None:
        self.reload()

    def reload(self) -> None:
        s = self.settings
        self._stamp = self._file_stamp()
        self.current = load_key(s.key_path, s.role, s.country)
        self.retired = load_retired(s.key_path, s.role, s.country)
        self.compromised = load_compromised(s.key_path, s.role, s.country)

    def _file_stamp(self) -> tuple[int, int]:
        st = self.settings.key_path.stat()
        return (st.st_mtime_ns, st.st_ino)

    def key(self) -> InstanceKey:
        """The current key; picks up a rotation done by another process (`ncc keys rotate`)."""
        try:
            if self._file_stamp() != self._stamp:
                self.reload()
        except OSError:
            pass  # keep signing with the key in memory; readiness reports the file problem
        return self.current

    def public_keys(self) -> dict[str, Ed25519PublicKey]:
        """Every key that may verify this instance's user tokens, by kid (compromised keys: none)."""
        return {kid: k.public_key for kid, k in self.verifying_keys().items()}

    def held_kids(self) -> set[str]:
        """Every key this instance ever held: current, retired and compromised (the audit's "own keys")."""
        self.key()
        return {self.current.kid, *(k.kid for k in self.retired), *(k.kid for k in self.compromised)}

    def verifying_keys(self) -> dict[str, InstanceKey]:
        """The current key and the retired ones (each with its ``retired_at``), by kid."""
        self.key()
        keys = {k.kid: k for k in self.retired}
        keys[self.current.kid] = self.current
        return keys


@dataclass
class Context:
    """Everything a request handler or job may use."""

    settings: Settings
    keyring: Keyring
    registry: SchemaRegistry
    clock: Callable[[], datetime] = utc_now
    publisher: Publisher | None = None  # node role
    search: Any = None  # node.services.search.SearchService
    federation: Any = None  # node.services.nodefed.NodeFederation (node role)
    hub: Any = None  # node.services.hub.HubService (hub role)
    sync: Any = None  # node.services.sync.Puller (hub role)

    @property
    def access(self) -> Access:
        """Who may see what on this instance (the one access policy, ``node.access``)."""
        return Access(self.settings.role, self.registry, self.settings.country or "")
    live: Any = None  # node.services.live.LiveQuery (hub role)
    atlas: Any = None  # node.services.atlas.AtlasPusher (node role, when atlas_url is set)
    log: Any = None  # node.services.translog.TransparencyLog (hub role)
    gatekeeper: Any = None  # node.services.applications.Gatekeeper (node role)
