"""pg_trgm GIN indexes for the contact search at 1M rows (PostgreSQL only; SQLite scans).

The expressions match what Django emits: ``icontains`` is ``UPPER(col::text) LIKE UPPER(%s)`` and
``startswith`` on the number is ``mobile::text LIKE %s``."""

from django.db import migrations

_FIELDS = ("last_name", "first_name", "company", "email")


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for field in _FIELDS:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS addressbook_contact_{field}_trgm ON addressbook_contact "
            f"USING gin (UPPER({field}::text) gin_trgm_ops)"
        )
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS addressbook_contact_mobile_trgm ON addressbook_contact "
        "USING gin ((mobile::text) gin_trgm_ops)"
    )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for field in (*_FIELDS, "mobile"):
        schema_editor.execute(f"DROP INDEX IF EXISTS addressbook_contact_{field}_trgm")


class Migration(migrations.Migration):
    dependencies = [("addressbook", "0002_contactimport")]
    operations = [migrations.RunPython(forwards, backwards)]
