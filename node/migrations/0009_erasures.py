"""Erasures (GDPR Art. 17): which erased records the purge job must still scrub from the database files."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


async def note_fresh_database(apps, schema_editor):  # type: ignore[no-untyped-def]
    # A database that held records before secure delete was switched on is VACUUM-ed once by the
    # first purge (old deletions may linger in free space); an empty one needs no such pass.
    from node.services.erasure import mark_vacuumed_if_empty

    await mark_vacuumed_if_empty(schema_editor.client)


class Migration(migrations.Migration):
    dependencies = [("ncc", "0010_search_disclosure")]

    operations = [
        ops.CreateModel(
            name='Erasure',
            fields=[
                ('record_id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=120)),
                ('version', fields.BigIntField()),
                ('erased_at', fields.CharField(max_length=20)),
                ('purged_at', fields.CharField(null=True, db_index=True, max_length=20)),
            ],
            options={'table': 'erasures', 'app': 'ncc', 'pk_attr': 'record_id'},
            bases=['Model'],
        ),
        ops.RunPython(note_fresh_database),
    ]
