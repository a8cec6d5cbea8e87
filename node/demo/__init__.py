"""``ncc demo``: a hub and a few nodes on loopback, loaded with a seeded synthetic Community.

``dataset`` generates the records (pure), ``countries`` and ``topics`` hold the material it draws
from, ``orchestrate`` starts the processes, enrolls, loads, syncs and searches.
"""
