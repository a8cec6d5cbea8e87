"""Sharing groups (DESIGN §15): the ``group:<name>`` visibility and the audience keys of the index.

A group is a named set of Member States' countries, kept by the hub admin in the signed directory.
A record of visibility ``group:<name>`` is shared with the hub and shown only to readers of that
group, and only while its origin is a member. Pure functions: no I/O, no clock.

**Audience keys.** The search index and the access policy (``node/access.py``) describe who may
see a record by one string per record: its visibility for ``public``/``network``/``national``, and
``group:<name>:<origin>`` for a group record. A reader's scope is the set of keys it may see, built
from its groups *and each group's current members*: a country leaving a group drops its key from
every scope at once, with no write to the index (DESIGN §15, "the hub hides its group records at
once"), and the same one ``visibility IN (…)`` condition filters results, totals and facets.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from federation.errors import GroupInvalid

GROUP_PREFIX = "group:"
#: A group's name (DESIGN §15).
GROUP_NAME = re.compile(r"\A[a-z0-9-]{1,63}\Z")
#: The visibilities that are not groups.
PLAIN_VISIBILITIES = ("public", "network", "national")
#: Longest visibility string: ``group:`` and a 63-character name.
MAX_VISIBILITY_LENGTH = len(GROUP_PREFIX) + 63


def valid_group_name(name: object) -> bool:
    """True for a well-formed group name (``^[a-z0-9-]{1,63}$``)."""
    return isinstance(name, str) and bool(GROUP_NAME.match(name))


def group_of(visibility: object) -> str | None:
    """The group named by a ``group:<name>`` visibility; None for any other value (malformed too)."""
    if not isinstance(visibility, str) or not visibility.startswith(GROUP_PREFIX):
        return None
    name = visibility[len(GROUP_PREFIX) :]
    return name if valid_group_name(name) else None


def is_visibility(value: object) -> bool:
    """True for ``public``, ``network``, ``national`` or a well-formed ``group:<name>``."""
    return value in PLAIN_VISIBILITIES or group_of(value) is not None


def group_visibility(name: str) -> str:
    """``group:<name>``."""
    return GROUP_PREFIX + name


def audience(visibility: str, origin: str) -> str:
    """The audience key of a record: its visibility, or ``group:<name>:<origin>`` for a group record."""
    return f"{visibility}:{origin}" if group_of(visibility) is not None else visibility


def group_audiences(groups: Iterable[str], members: Mapping[str, Iterable[str]]) -> frozenset[str]:
    """The audience keys of ``groups``' records from their current members (unknown groups: none)."""
    return frozenset(f"{GROUP_PREFIX}{g}:{c}" for g in groups for c in members.get(g, ()))


def audience_group(key: str) -> tuple[str, str] | None:
    """(group, origin) of a group audience key, or None for a plain visibility."""
    if not key.startswith(GROUP_PREFIX):
        return None
    name, _, origin = key[len(GROUP_PREFIX) :].rpartition(":")
    return (name, origin) if valid_group_name(name) and origin else None


def check_group_member(visibility: str, origin: str, deleted: bool, members: Mapping[str, Iterable[str]]) -> None:
    """The hub's rule for a verified record of a sharing group: its origin must be a member of the group
    now (``members``: each group's countries). A tombstone always passes: it only removes.

    Raises:
        GroupInvalid: a live group record whose origin is not a member (or whose group does not exist).
    """
    group = group_of(visibility)
    if group is not None and not deleted and origin not in members.get(group, ()):
        raise GroupInvalid(f"{origin} is not a member of the sharing group {group}")
