"""Persistence: tortoise models, migrations and the queries the services use."""

from node.storage import transactions

transactions.install()
