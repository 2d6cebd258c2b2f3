"""Name search moves to its own table, matched by word start (ADR-1, ADR-3).

The pg_trgm GIN index on the generated column ``Contact.search`` was more than half of the cost
of inserting contacts (COPY of 1M contacts: ~13 s without it, ~27 s with it), so a 1M-row import
could not meet its 20 s target. ``ContactSearch`` holds the same words, one row per contact,
written by the services and, for imports, by a task after the merge commits.

Also keeps one index on (account, mobile) instead of two: the pattern-ops one serves equality,
``= ANY`` and the number search's LIKE 'prefix%' (the database's collation is C.UTF-8)."""

import django.contrib.postgres.indexes
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.utils import timezone

from addressbook.search import search_text

BATCH = 5000


def backfill(apps, schema_editor):
    """One search row per existing contact, read and written in keyset batches by id; imports
    already done count as indexed. Runs before the GIN index exists (one build, not 1M updates)."""
    Contact = apps.get_model("addressbook", "Contact")
    ContactSearch = apps.get_model("addressbook", "ContactSearch")
    ContactImport = apps.get_model("addressbook", "ContactImport")
    db = schema_editor.connection.alias
    postgres = schema_editor.connection.vendor == "postgresql"
    if postgres:
        # Check the rows' foreign keys per statement: deferred checks would still be pending when
        # the index is created below, which PostgreSQL refuses ("pending trigger events").
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    last_id = 0
    contacts = Contact.objects.using(db).order_by("id")
    while True:
        rows = list(
            contacts.filter(id__gt=last_id).values_list(
                "id", "account_id", "last_name", "first_name", "company", "email"
            )[:BATCH]
        )
        if not rows:
            break
        ContactSearch.objects.using(db).bulk_create(
            ContactSearch(contact_id=cid, account_id=account_id, text=search_text(last, first, company, email))
            for cid, account_id, last, first, company, email in rows
        )
        last_id = rows[-1][0]
    ContactImport.objects.using(db).filter(status="done", search_indexed_at__isnull=True).update(
        search_indexed_at=timezone.now()
    )
    if postgres:
        schema_editor.execute("SET CONSTRAINTS ALL DEFERRED")
        # Without statistics the planner takes every word for rare and reads a common one through
        # the trigram index (1 s instead of 20 ms at 1M contacts) until autovacuum analyses the table.
        schema_editor.execute(f"ANALYZE {ContactSearch._meta.db_table}")


def drop_old_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS addressbook_contact_search_trgm")
    schema_editor.execute("DROP INDEX IF EXISTS addressbook_contact_mobile_like")


def restore_old_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS addressbook_contact_search_trgm ON addressbook_contact USING gin (search gin_trgm_ops)"
    )
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS addressbook_contact_mobile_like ON addressbook_contact "
        "(account_id, mobile varchar_pattern_ops)"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("addressbook", "0004_search_indexes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="ContactSearch",
            fields=[
                (
                    "contact",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="search_entry",
                        serialize=False,
                        to="addressbook.contact",
                    ),
                ),
                (
                    "account",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                ("text", models.TextField()),
            ],
            options={
                "verbose_name": "contact search text",
                "verbose_name_plural": "contact search texts",
            },
        ),
        migrations.AddField(
            model_name="contactimport",
            name="search_indexed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="contactimport",
            index=models.Index(
                condition=models.Q(("search_indexed_at__isnull", True), ("status", "done")),
                fields=["account"],
                name="addressbook_import_search_todo",
            ),
        ),
        migrations.AddIndex(
            model_name="contactsearch",
            index=django.contrib.postgres.indexes.GinIndex(
                fields=["text"], name="addressbook_contactsearch_trgm", opclasses=["gin_trgm_ops"]
            ),
        ),
        migrations.AddIndex(
            model_name="contact",
            index=models.Index(
                fields=["account", "mobile"],
                name="addressbook_contact_mobile_idx",
                opclasses=["int8_ops", "varchar_pattern_ops"],
            ),
        ),
        migrations.RemoveIndex(
            model_name="contact",
            name="addressbook_contact_phone_idx",
        ),
        migrations.RunPython(drop_old_indexes, restore_old_indexes),
        migrations.RemoveField(
            model_name="contact",
            name="search",
        ),
    ]
