"""Persistence: tortoise models, migrations and the queries the services use."""
