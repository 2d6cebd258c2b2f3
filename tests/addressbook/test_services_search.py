"""The name-search rows (ContactSearch) stay in step with the contacts: services write them in the
same transaction, an import's task writes them after the merge, beat catches a lost task."""

import datetime
import threading

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, connections
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from addressbook import selectors, services, tasks
from addressbook.models import Contact, ContactImport, ContactSearch
from addressbook.search import search_text
from smsplatform.celery import app
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


def _found(account, query: str) -> set[int]:
    return {contact.id for contact in selectors.contact_page(account=account, query=query).object_list}


def _text(contact) -> str:
    return ContactSearch.objects.get(contact=contact).text


def test_create_update_and_delete_keep_the_search_row_in_step(user):
    contact = services.contact_create(account=user, mobile="0612345678", last_name="Dupré", email="e@acme.fr")
    assert _text(contact) == " DUPRE E ACME FR"
    assert ContactSearch.objects.get(contact=contact).account_id == user.id
    assert _found(user, "dupre acme") == {contact.id}
    services.contact_update(
        contact=contact, mobile="0612345678", last_name="Martin", first_name="Léa", email="", company="Garage du Port"
    )
    assert _text(contact) == " MARTIN LEA GARAGE DU PORT"
    assert _found(user, "dupre") == set()
    assert _found(user, "lea port") == {contact.id}
    assert services.contacts_delete(account=user, contact_ids=[contact.id]) == 1
    assert not ContactSearch.objects.exists()


def test_a_refused_create_or_update_writes_no_search_row(user):
    contact = services.contact_create(account=user, mobile="0612345678", last_name="Durand")
    with pytest.raises(Exception, match="already in your address book"):
        services.contact_create(account=user, mobile="0612345678", last_name="Other")
    with pytest.raises(Exception, match="Too short"):
        services.contact_update(contact=contact, mobile="06", last_name="Martin", first_name="", email="", company="")
    assert list(ContactSearch.objects.values_list("text", flat=True)) == [" DURAND"]


def test_merge_indexes_the_kept_contact_and_drops_the_others(user):
    kept = ContactFactory(account=user, mobile="+33612345678", last_name="D", first_name="")
    other = ContactFactory(account=user, mobile="+33612345678", last_name="Durand", email="d@boulangerie.fr")
    merged = services.duplicates_merge(account=user, mobile="+33612345678")
    assert merged.pk == kept.pk
    assert _text(kept) == " DURAND PAUL D BOULANGERIE FR"
    assert _found(user, "boulangerie") == {kept.id}
    assert not ContactSearch.objects.filter(contact_id=other.id).exists()


def test_deleting_numbers_deletes_their_search_rows(user):
    gone, kept = ContactFactory(account=user, mobile="+33612345678"), ContactFactory(account=user)
    assert services.contacts_delete_numbers(account_id=user.id, numbers=["+33612345678"]) == 1
    assert list(ContactSearch.objects.values_list("contact_id", flat=True)) == [kept.id]
    assert gone.id not in _found(user, "durand")


def test_refresh_by_ids_since_or_all_and_only_the_accounts(user, other_user, monkeypatch):
    monkeypatch.setattr(services, "_SEARCH_BATCH", 2)  # several keyset batches
    mine = [Contact.objects.create(account=user, mobile=f"+3361234567{i}", last_name=f"Nom{i}") for i in range(5)]
    theirs = Contact.objects.create(account=other_user, mobile="+33698765432", last_name="Autre")
    assert services.search_index_refresh(account_id=user.id, contact_ids=[mine[0].id, theirs.id]) == 1
    assert set(ContactSearch.objects.values_list("contact_id", flat=True)) == {mine[0].id}
    later = timezone.now()
    Contact.objects.filter(id__in=[mine[3].id, mine[4].id]).update(updated_at=later + datetime.timedelta(seconds=1))
    assert services.search_index_refresh(account_id=user.id, since=later) == 2
    assert set(ContactSearch.objects.values_list("contact_id", flat=True)) == {mine[0].id, mine[3].id, mine[4].id}
    assert services.search_index_refresh(account_id=user.id) == 2  # the two missing; the right ones are left alone
    assert services.search_index_refresh(account_id=user.id) == 0
    assert {c.id: _text(c) for c in mine} == {c.id: f" NOM{i}" for i, c in enumerate(mine)}
    assert not ContactSearch.objects.filter(account=other_user).exists()


def _import(user, text: str, django_capture_on_commit_callbacks, **options) -> ContactImport:
    upload = SimpleUploadedFile("contacts.csv", text.encode(), content_type="text/csv")
    imp = services.contact_import_create(account=user, upload=upload)
    with django_capture_on_commit_callbacks(execute=True):
        services.contact_import_start(contact_import=imp, mapping=imp.mapping, has_header=True, consent=True, **options)
    imp.refresh_from_db()
    return imp


def test_imported_contacts_are_found_by_name_once_the_import_commits(user, django_capture_on_commit_callbacks):
    existing = ContactFactory(account=user, mobile="+33698765432", last_name="Ancien", first_name="")
    untouched = ContactFactory(account=user, last_name="Zola")
    ContactSearch.objects.filter(contact=untouched).update(text=" STALE")  # not the import's: left alone
    # Last changed before the import (in a test, the database's clock reads the test's start).
    Contact.objects.filter(pk=untouched.pk).update(updated_at=timezone.now() - datetime.timedelta(hours=1))
    csv = "Nom;Prénom;Mobile;Email;Société\nDupré;Élodie;06 12 34 56 78;e@acme.fr;\nNouveau;;0698765432;;Café\n"
    imp = _import(user, csv, django_capture_on_commit_callbacks)
    assert (imp.status, imp.imported, imp.updated) == (ContactImport.Status.DONE, 1, 1), imp.error
    assert imp.search_indexed_at is not None and imp.search_indexed_at >= imp.finished_at
    created = Contact.objects.get(account=user, mobile="+33612345678")
    assert _found(user, "elodie acme") == {created.id}
    assert _found(user, "nouveau cafe") == {existing.id}  # updated by the merge: its new words
    assert _found(user, "ancien") == set()
    assert _text(untouched) == " STALE"
    assert not selectors.contact_imports_indexing(account=user)


def test_a_blacklist_import_is_indexed_at_once(user, django_capture_on_commit_callbacks):
    imp = _import(user, "Mobile\n0612345678\n", django_capture_on_commit_callbacks, mode="blacklist")
    assert imp.status == ContactImport.Status.DONE and imp.search_indexed_at is not None


def _lost_import(user, *, minutes_ago: int, **fields) -> tuple[ContactImport, Contact]:
    """A done import whose indexing task never ran: its contact has no search row."""
    finished = timezone.now() - datetime.timedelta(minutes=minutes_ago)
    imp = ContactImport.objects.create(
        account=user, original_name="a.csv", file_format="csv", file="a.csv", status="done", finished_at=finished
    )
    ContactImport.objects.filter(pk=imp.pk).update(created_at=finished - datetime.timedelta(minutes=1))
    contact = Contact.objects.create(account=user, mobile="+33612345678", last_name="Perdu", **fields)
    return imp, contact


def test_beat_requeues_the_indexing_of_imports_whose_task_was_lost(
    user, other_user, django_capture_on_commit_callbacks
):
    stale, contact = _lost_import(user, minutes_ago=11)
    recent = ContactImport.objects.create(
        account=other_user, original_name="b.csv", file_format="csv", file="b.csv", status="done",
        finished_at=timezone.now() - datetime.timedelta(minutes=2),
    )  # fmt: skip
    assert selectors.contact_imports_indexing(account=user)
    assert _found(user, "perdu") == set()
    with django_capture_on_commit_callbacks(execute=True):
        tasks.contact_imports_search_requeue.delay()
    stale.refresh_from_db(), recent.refresh_from_db()
    assert stale.search_indexed_at is not None
    assert recent.search_indexed_at is None  # its own task may still be on its way
    assert _found(user, "perdu") == {contact.id}
    assert not selectors.contact_imports_indexing(account=user)
    schedule = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "addressbook.tasks.contact_imports_search_requeue" in schedule
    assert "addressbook.tasks.contact_imports_search_requeue" in app.tasks


def test_contact_list_says_when_an_import_is_still_being_indexed(client, user, other_user):
    _lost_import(user, minutes_ago=1)
    client.force_login(user)
    response = client.get("/contacts/")
    assert b'data-testid="search-indexing"' in response.content
    assert b"Name, company, email (word start) or number" in response.content
    client.force_login(other_user)
    assert b'data-testid="search-indexing"' not in client.get("/contacts/").content


@pytest.mark.django_db(transaction=True)
def test_migration_0005_indexes_the_existing_contacts(user, other_user):
    """Migrating from 0004 (no search table) writes one search row per contact, of its account,
    and counts the imports already done as indexed."""
    executor = MigrationExecutor(connection)
    before = [("addressbook", "0004_search_indexes")]
    executor.migrate(before)
    try:
        old = executor.loader.project_state(before).apps
        OldContact, OldImport = old.get_model("addressbook", "Contact"), old.get_model("addressbook", "ContactImport")
        contacts = [
            OldContact.objects.create(
                account_id=user.id, mobile=f"+3361234567{i}", last_name=f"Dupré{i}", email="a@b.fr"
            )
            for i in range(3)
        ] + [OldContact.objects.create(account_id=other_user.id, mobile="+33698765432", first_name="Élodie")]
        done = OldImport.objects.create(account_id=user.id, original_name="a.csv", file="a.csv", status="done")
        running = OldImport.objects.create(account_id=user.id, original_name="b.csv", file="b.csv", status="running")
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    rows = {row.contact_id: (row.account_id, row.text) for row in ContactSearch.objects.all()}
    assert rows == {
        contacts[0].id: (user.id, " DUPRE0 A B FR"),
        contacts[1].id: (user.id, " DUPRE1 A B FR"),
        contacts[2].id: (user.id, " DUPRE2 A B FR"),
        contacts[3].id: (other_user.id, " ELODIE"),
    }
    assert ContactImport.objects.get(pk=done.pk).search_indexed_at is not None
    assert ContactImport.objects.get(pk=running.pk).search_indexed_at is None  # indexed by its own task
    assert _found(user, "dupre1") == {contacts[1].id}
    assert rows[contacts[3].id][1] == search_text("", "Élodie", "", "")


@pytest.mark.django_db(transaction=True)
def test_a_refresh_never_writes_back_a_name_read_before_an_edit(require_postgres, user, monkeypatch):
    """The task reads a contact, the user renames it before the task writes its row: the user's
    write waits for the task's batch (the account's search lock), so the new name wins."""
    contact = ContactFactory(account=user, mobile="+33612345678", last_name="Ancien")
    read, proceed = threading.Event(), threading.Event()
    real_search_text = services.search_text

    def search_text_pausing_the_task(*fields):  # runs between the task's read and its write
        if threading.current_thread().name == "task":
            read.set()
            proceed.wait(30)
        return real_search_text(*fields)

    monkeypatch.setattr(services, "search_text", search_text_pausing_the_task)
    task = threading.Thread(
        name="task", target=lambda: (services.search_index_refresh(account_id=user.id), connections.close_all())
    )
    edit = threading.Thread(
        target=lambda: (
            services.contact_update(
                contact=Contact.objects.get(pk=contact.pk),
                mobile="+33612345678",
                last_name="Nouveau",
                first_name="",
                email="",
                company="",
            ),
            connections.close_all(),
        )
    )
    task.start()
    try:
        assert read.wait(30)
        edit.start()
        edit.join(1)
        assert edit.is_alive()  # waits for the task's batch
    finally:
        proceed.set()
        task.join(30)
        edit.join(30)
    assert _text(contact) == " NOUVEAU"
