"""Schema migrations (tortoise-orm's built-in framework), applied by `ncc init`, `ncc serve` and every
command that opens the database.

Generated with `tortoise makemigrations` and reviewed. Table descriptions (model docstrings) are
left out of the migrations on purpose: tortoise emits them as SQL comments, which broke SQLite DDL
for some docstrings, so `AlterModelOptions` steps that only carry them are dropped.
"""
