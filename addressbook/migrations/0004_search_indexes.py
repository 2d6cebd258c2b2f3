"""Indexes for the contact search at 1M rows, PostgreSQL only (SQLite scans).

- name/company/email: ``search`` (upper-cased concatenation) LIKE '%TERM%' through one pg_trgm GIN index;
- number: ``mobile::text LIKE '+33612%'`` (Django's startswith) through a btree with varchar_pattern_ops,
  much cheaper to maintain on import than a trigram index."""

from django.db import migrations


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS addressbook_contact_search_trgm ON addressbook_contact USING gin (search gin_trgm_ops)"
    )
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS addressbook_contact_mobile_like ON addressbook_contact "
        "(account_id, mobile varchar_pattern_ops)"
    )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS addressbook_contact_search_trgm")
    schema_editor.execute("DROP INDEX IF EXISTS addressbook_contact_mobile_like")


class Migration(migrations.Migration):
    dependencies = [("addressbook", "0003_contact_search")]
    operations = [migrations.RunPython(forwards, backwards)]
