"""A node following its sharing groups (DESIGN §15).

The hub's directory says which groups this node's country is a member of. Whenever the node holds a
directory it has not yet acted on, :func:`follow_directory` brings the feed in line with it
(``Publisher.reconcile_groups``): the records of a group it left are published as tombstones, those of a
group it joined again as their next version.

Every feed request of the hub carries the serial of the hub's current directory
(``NCC-Directory-Serial``); a node holding an older one fetches the new one first, so a country removed
from a group withdraws its group records within that very pull. The hourly directory refresh, the
audit and ``ncc recover`` fetch it too; whichever process stored it, the next feed request acts on it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from node.services.nodefed import DIRECTORY_KEY, FederationError, get_state, set_state

log = logging.getLogger("ncc.groups")

#: ``node_state`` key: the serial of the directory whose groups the feed follows.
RECONCILED_KEY = "groups_reconciled_serial"
_lock = asyncio.Lock()


def announced_serial(value: str | None) -> int | None:
    """The hub's ``NCC-Directory-Serial`` header as a number (None when absent or not a number)."""
    if value is None or not value.isdigit() or len(value) > 16:
        return None
    return int(value)


async def follow_directory(federation: Any, publisher: Any, announced: int | None = None) -> tuple[int, int]:
    """Fetch the hub's directory when it announced a newer one, then act on the held directory if it
    has not been yet. Returns (withdrawn, republished); a hub that cannot be reached is logged and
    the held directory stands."""
    async with _lock:
        held = await get_state(DIRECTORY_KEY)
        if held is None:
            return 0, 0
        if announced is not None and announced > int(held.get("serial", 0)):
            try:
                await federation.refresh_directory()
            except FederationError as exc:
                log.warning("directory refresh failed", extra={"error": str(exc)})
            held = await get_state(DIRECTORY_KEY) or held
        serial = int(held.get("serial", 0))
        if await get_state(RECONCILED_KEY) == serial:
            return 0, 0
        changed = await publisher.reconcile_groups()
        await set_state(RECONCILED_KEY, serial)
        if any(changed):
            log.info(
                "sharing groups followed",
                extra={"withdrawn": changed[0], "republished": changed[1], "serial": serial},
            )
        return changed
