import csv
import io
import threading

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DEFAULT_DB_ALIAS, connections

from addressbook import services
from addressbook.models import BlacklistEntry, Contact, ContactImport, Group, Membership
from tests.factories import ContactFactory, GroupFactory

pytestmark = pytest.mark.django_db


def _upload(text: str, name="contacts.csv", encoding="utf-8") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(encoding), content_type="text/csv")


def _run_import(user, text, *, django_capture_on_commit_callbacks, mapping=None, **options):
    imp = services.contact_import_create(account=user, upload=_upload(text))
    with django_capture_on_commit_callbacks(execute=True):
        services.contact_import_start(
            contact_import=imp,
            mapping=mapping or imp.mapping,
            has_header=imp.has_header,
            consent=True,
            **options,
        )
    imp.refresh_from_db()
    return imp


CSV = (
    "Nom;Prénom;Mobile;Email;Société\n"
    "Dupré;Élodie;06 12 34 56 78;elodie@example.com;Café\n"  # line 2: new
    "Martin;Jean;+33698765432;;ACME\n"  # line 3: exists -> updated
    "Dupré;Élodie bis;0612345678;;\n"  # line 4: repeat of line 2 -> duplicate
    "Bad;Number;12;;\n"  # line 5: rejected, too short
    "No;Mobile;;;\n"  # line 6: rejected, no number
    "Land;Line;01 42 68 53 00;;\n"  # line 7: rejected, landline
    "Mail;Bad;0611111111;not-an-email;\n"  # line 8: rejected, email
    ";;;;\n"  # blank record: not a row
    "Excel;Lost zero;612121212;;\n"  # line 10: Excel dropped the 0
)


def test_import_accounts_for_every_row(user, django_capture_on_commit_callbacks):
    existing = ContactFactory(account=user, mobile="+33698765432", last_name="Old", company="")
    imp = _run_import(user, CSV, django_capture_on_commit_callbacks=django_capture_on_commit_callbacks)
    assert imp.status == ContactImport.Status.DONE, imp.error
    assert imp.mapping == {"last_name": 0, "first_name": 1, "mobile": 2, "email": 3, "company": 4}
    assert (imp.imported, imp.updated, imp.duplicates, imp.rejected) == (2, 1, 1, 4)
    assert imp.imported + imp.updated + imp.duplicates + imp.rejected == imp.total_rows == 8
    assert imp.consent_at is not None and "agreed to receive SMS" in imp.consent_text
    elodie = Contact.objects.get(account=user, mobile="+33612345678")
    assert (elodie.first_name, elodie.company, elodie.region) == ("Élodie", "Café", "FR")
    assert Contact.objects.filter(account=user, mobile="+33612121212").exists()
    existing.refresh_from_db()
    assert (existing.last_name, existing.company) == ("Martin", "ACME")  # non-empty file values win
    rows = list(csv.reader(io.StringIO(imp.report.read().decode())))
    assert rows[0] == ["line", "reason", "values"]
    reasons = {int(r[0]): r[1] for r in rows[1:]}
    assert set(reasons) == {5, 6, 7, 8}
    assert reasons[5] == "Too short."
    assert reasons[6] == "No mobile number."
    assert "Landline" in reasons[7]
    assert reasons[8] == "Invalid email address."
    assert rows[1][2:] == ["Bad", "Number", "12", "", ""]


def test_reimport_rewrites_nothing_and_updates(user, django_capture_on_commit_callbacks):
    first = _run_import(user, CSV, django_capture_on_commit_callbacks=django_capture_on_commit_callbacks)
    again = _run_import(user, CSV, django_capture_on_commit_callbacks=django_capture_on_commit_callbacks)
    assert first.imported == 3 and again.imported == 0
    assert again.updated == 3
    assert Contact.objects.filter(account=user).count() == 3


def test_import_fills_a_group_by_name(user, django_capture_on_commit_callbacks):
    group = GroupFactory(account=user, name="Clients")
    imp = _run_import(
        user, CSV, django_capture_on_commit_callbacks=django_capture_on_commit_callbacks, group_name="clients"
    )
    assert imp.group == group
    assert group.contacts.count() == 3


def test_blacklist_mode_imports_numbers_into_the_blacklist(user, django_capture_on_commit_callbacks):
    BlacklistEntry.objects.create(account=user, number="+33612345678")
    text = "Mobile\n0612345678\n01 42 68 53 00\n0698765432\n0698765432\nabc\n"
    imp = _run_import(
        user, text, django_capture_on_commit_callbacks=django_capture_on_commit_callbacks, mode="blacklist"
    )
    # Landlines can be blacklisted; an already blacklisted number and a repeat are duplicates.
    assert (imp.imported, imp.duplicates, imp.rejected) == (2, 2, 1)
    assert set(BlacklistEntry.objects.filter(account=user).values_list("number", flat=True)) == {
        "+33612345678",
        "+33142685300",
        "+33698765432",
    }
    assert not Contact.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_progress_counters_are_visible_to_other_connections_during_the_import(
    user, django_capture_on_commit_callbacks, monkeypatch
):
    """The progress page reads through another connection than the import's (whose merge is one
    open transaction on PostgreSQL): the counters must reach it chunk by chunk."""
    monkeypatch.setattr(services, "_IMPORT_CHUNK", 2)
    seen = []
    real_save = services._Progress.save
    observer = connections.create_connection(DEFAULT_DB_ALIAS)

    def spy(self, **counters):
        real_save(self, **counters)
        with observer.cursor() as other:
            other.execute("SELECT status, processed_rows, total_rows FROM addressbook_contactimport")
            seen.append(other.fetchone())

    monkeypatch.setattr(services._Progress, "save", spy)
    text = "Mobile\n" + "".join(f"06000000{i:02d}\n" for i in range(10, 15))
    try:
        imp = _run_import(user, text, django_capture_on_commit_callbacks=django_capture_on_commit_callbacks)
    finally:
        observer.close()
    assert imp.imported == 5
    assert seen == [("running", 0, 5), ("running", 2, 5), ("running", 4, 5), ("running", 5, 5)]
    assert imp.percent == 100


@pytest.mark.parametrize("chunk", [1, 20_000])
def test_failed_file_changes_nothing(user, django_capture_on_commit_callbacks, monkeypatch, chunk):
    """With chunks of one row, the rows before the bad byte are already loaded (PostgreSQL loads
    chunks as they are read): the failure must roll them back."""
    monkeypatch.setattr(services, "_IMPORT_CHUNK", chunk)
    imp = services.contact_import_create(account=user, upload=_upload("Mobile\n0612345678\n"))
    with imp.file.open("ab") as handle:
        handle.write("Durand\n0698765432\n".encode("cp1252") + b"\xe9\xff\n")
    with django_capture_on_commit_callbacks(execute=True):
        services.contact_import_start(contact_import=imp, mapping={"mobile": 0}, has_header=True, consent=True)
    imp.refresh_from_db()
    assert imp.status == ContactImport.Status.FAILED
    assert "not valid utf-8" in imp.error
    assert not Contact.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_database_error_mid_import_changes_nothing_and_stops_the_reader(
    user, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(services, "_IMPORT_CHUNK", 2)
    ContactFactory(account=user, mobile="+33600000099", last_name="Kept")
    calls = []
    real_stage, real_add = services._stage, services._ContactLoader.add

    def fail_second(real):
        def call(*args):
            calls.append(1)
            if len(calls) == 2:
                raise RuntimeError("disk full")
            return real(*args)

        return call

    monkeypatch.setattr(services, "_stage", fail_second(real_stage))
    monkeypatch.setattr(services._ContactLoader, "add", fail_second(real_add))
    threads = threading.active_count()
    text = "Mobile;Nom\n" + "".join(f"06000000{i:02d};New\n" for i in range(10, 40)) + "0600000099;Changed\n"
    imp = _run_import(user, text, django_capture_on_commit_callbacks=django_capture_on_commit_callbacks)
    assert imp.status == ContactImport.Status.FAILED
    assert "nothing was changed" in imp.error
    assert list(Contact.objects.filter(account=user).values_list("mobile", "last_name")) == [("+33600000099", "Kept")]
    assert threading.active_count() == threads  # the reading thread ended too


def test_import_tolerates_stored_numbers_that_are_not_e164(user, django_capture_on_commit_callbacks):
    Contact.objects.create(account=user, mobile="legacy", last_name="Old data")
    text = "Mobile\n0612345678\n"
    imp = _run_import(user, text, django_capture_on_commit_callbacks=django_capture_on_commit_callbacks)
    assert (imp.status, imp.imported) == (ContactImport.Status.DONE, 1)


def test_import_needs_consent_and_a_mobile_column(user):
    imp = services.contact_import_create(account=user, upload=_upload("Mobile\n0612345678\n"))
    with pytest.raises(ValidationError, match="agreed"):
        services.contact_import_start(contact_import=imp, mapping={"mobile": 0}, has_header=True, consent=False)
    with pytest.raises(ValidationError, match="column"):
        services.contact_import_start(contact_import=imp, mapping={"email": 0}, has_header=True, consent=True)
    imp.refresh_from_db()
    assert imp.status == ContactImport.Status.PENDING


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [(b"", "empty.csv", "empty"), (b"%PDF\x00\x01", "doc.pdf", "not a CSV"), (b"PK\x03\x04xx", "x.xlsx", "damaged")],
)
def test_bad_upload_is_refused_and_stores_nothing(user, content, name, message):
    with pytest.raises(ValidationError, match=message):
        services.contact_import_create(account=user, upload=SimpleUploadedFile(name, content))
    assert not ContactImport.objects.exists()


def test_oversize_upload_is_refused(user, settings):
    settings.ADDRESSBOOK_IMPORT_MAX_BYTES = 10
    with pytest.raises(ValidationError, match="too big"):
        services.contact_import_create(account=user, upload=_upload("Mobile\n0612345678\n"))
    assert not ContactImport.objects.exists()


def test_contact_create_normalises_and_refuses(user):
    contact = services.contact_create(account=user, mobile="06.12.34.56.78", last_name="Durand")
    assert (contact.mobile, contact.region) == ("+33612345678", "FR")
    with pytest.raises(ValidationError, match="already in your address book"):
        services.contact_create(account=user, mobile="+33 6 12 34 56 78")
    services.contact_create(account=user, mobile="+33 6 12 34 56 78", allow_duplicate=True)
    assert Contact.objects.filter(mobile="+33612345678").count() == 2
    with pytest.raises(ValidationError, match="refused: Too short"):
        services.contact_create(account=user, mobile="0612")


def test_merge_keeps_groups_and_most_complete_fields(user):
    a = ContactFactory(account=user, mobile="+33612345678", last_name="D", first_name="", email="")
    b = ContactFactory(account=user, mobile="+33612345678", last_name="Durand", first_name="", email="d@example.com")
    c = ContactFactory(account=user, mobile="+33612345678", last_name="", first_name="Léa", company="ACME")
    g1, g2 = GroupFactory(account=user), GroupFactory(account=user)
    Membership.objects.create(group=g1, contact=b)
    Membership.objects.create(group=g2, contact=c)
    Membership.objects.create(group=g2, contact=a)
    kept = services.duplicates_merge(account=user, mobile="+33612345678")
    assert kept.pk == a.pk
    assert (kept.last_name, kept.first_name, kept.email, kept.company) == ("Durand", "Léa", "d@example.com", "ACME")
    assert set(kept.groups.all()) == {g1, g2}
    assert Contact.objects.filter(account=user).count() == 1
    with pytest.raises(ValidationError):
        services.duplicates_merge(account=user, mobile="+33612345678")


def test_groups_bulk_add_remove_and_delete_keeps_contacts(user, other_user):
    mine = [ContactFactory(account=user) for _ in range(3)]
    theirs = ContactFactory(account=other_user)
    group = services.group_create(account=user, name="VIP", contact_ids=[mine[0].id, theirs.id])
    assert list(group.contacts.all()) == [mine[0]]  # another account's contact is ignored
    assert services.group_add_contacts(group=group, contact_ids=[c.id for c in mine]) == 3
    assert group.contacts.count() == 3
    services.group_remove_contacts(group=group, contact_ids=[mine[1].id])
    assert group.contacts.count() == 2
    with pytest.raises(ValidationError, match="already have a group"):
        services.group_create(account=user, name="vip")
    services.group_delete(group=group)
    assert not Group.objects.filter(account=user).exists()
    assert Contact.objects.filter(account=user).count() == 3


def test_blacklist_add_is_idempotent_and_read_by_the_pipeline(user, other_user):
    services.blacklist_add(account=user, number="06 12 34 56 78")
    services.blacklist_add(account=user, number="+33612345678")
    assert BlacklistEntry.objects.filter(account=user).count() == 1
    assert services.blacklisted_numbers(account_id=user.id, numbers=["+33612345678", "+33698765432"]) == {
        "+33612345678"
    }
    assert services.blacklisted_numbers(account_id=other_user.id, numbers=["+33612345678"]) == set()
    with pytest.raises(ValidationError):
        services.blacklist_add(account=user, number="hello")


def test_import_keeps_special_characters(user, django_capture_on_commit_callbacks):
    # Tabs, backslashes and newlines must survive the COPY text format on PostgreSQL.
    text = 'Nom,Mobile,Société\n"Back\\slash\tTab",0612345678,"Two\nlines"\n'
    imp = _run_import(user, text, django_capture_on_commit_callbacks=django_capture_on_commit_callbacks)
    contact = Contact.objects.get(account=user)
    assert imp.imported == 1
    assert (contact.last_name, contact.company) == ("Back\\slash\tTab", "Two\nlines")


def _run_upload(user, upload, django_capture_on_commit_callbacks):
    imp = services.contact_import_create(account=user, upload=upload)
    with django_capture_on_commit_callbacks(execute=True):
        services.contact_import_start(contact_import=imp, mapping=imp.mapping, has_header=imp.has_header, consent=True)
    imp.refresh_from_db()
    return imp


def test_import_legacy_xls(user, django_capture_on_commit_callbacks):
    from tests.addressbook.test_importers import FIXTURES

    upload = SimpleUploadedFile("contacts.xls", (FIXTURES / "contacts.xls").read_bytes())
    imp = _run_upload(user, upload, django_capture_on_commit_callbacks)
    assert (imp.file_format, imp.imported, imp.rejected) == ("xls", 2, 1)
    assert set(Contact.objects.values_list("mobile", "company")) == {
        ("+33612345678", "Café Noël"),
        ("+33698765432", "ACME"),
    }


def test_import_xlsx_with_numeric_phone_cells(user, django_capture_on_commit_callbacks):
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["Prénom", "Nom", "Portable"])
    sheet.append(["Léa", "Durand", 612345678])  # Excel turned 06 12 34 56 78 into a number
    sheet.append(["Jean", "Martin", "06 98 76 54 32"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    imp = _run_upload(user, SimpleUploadedFile("c.xlsx", buffer.getvalue()), django_capture_on_commit_callbacks)
    assert (imp.file_format, imp.imported, imp.rejected) == ("xlsx", 2, 0)
    assert Contact.objects.get(mobile="+33612345678").first_name == "Léa"


_CHUNKED = (
    "Nom;Mobile;Email\n"
    "A;0612345678;\n"  # new
    "B;0698765432;b@example.com\n"  # existing -> updated
    "C;0612345678;c@example.com\n"  # repeat of a new number
    "D;0611111111;\n"  # new
    "E;0698765432;\n"  # repeat of an existing number
    "F;12;\n"  # rejected
    "G;0611111111;\n"  # repeat of a new number
    "H;0622222222;\n"  # existing twice in the account -> both updated
    "I;0622222222;i@example.com\n"  # repeat of an existing number
    "J;0633333333;\n"  # new
)


@pytest.mark.parametrize("chunk", [1, 2, 3, 20_000])
def test_import_counts_do_not_depend_on_chunks(
    user, other_user, django_capture_on_commit_callbacks, monkeypatch, chunk
):
    """Rows are merged chunk by chunk: a number's first line wins whichever chunk repeats it."""
    monkeypatch.setattr(services, "_IMPORT_CHUNK", chunk)
    ContactFactory(account=user, mobile="+33698765432", last_name="Old B")
    twins = ContactFactory.create_batch(2, account=user, mobile="+33622222222", last_name="Old H")
    ContactFactory(account=other_user, mobile="+33612345678", last_name="Not mine")
    group = GroupFactory(account=user, name="Clients")
    imp = _run_import(
        user, _CHUNKED, django_capture_on_commit_callbacks=django_capture_on_commit_callbacks, group_name="Clients"
    )
    assert (imp.imported, imp.updated, imp.duplicates, imp.rejected, imp.total_rows) == (3, 2, 4, 1, 10)
    names = dict(Contact.objects.filter(account=user).values_list("mobile", "last_name").order_by("id"))
    assert names == {
        "+33698765432": "B",
        "+33622222222": "H",
        "+33612345678": "A",
        "+33611111111": "D",
        "+33633333333": "J",
    }
    assert Contact.objects.get(account=user, mobile="+33698765432").email == "b@example.com"
    assert Contact.objects.filter(account=user, mobile="+33622222222", last_name="H", email="").count() == 2
    assert [c.last_name for c in Contact.objects.filter(account=user, id__gt=twins[1].id).order_by("id")] == [
        "A",
        "D",
        "J",
    ]
    assert group.contacts.count() == 6
    assert Contact.objects.get(account=other_user).last_name == "Not mine"


@pytest.mark.parametrize("chunk", [1, 2, 20_000])
def test_blacklist_import_counts_do_not_depend_on_chunks(user, django_capture_on_commit_callbacks, monkeypatch, chunk):
    monkeypatch.setattr(services, "_IMPORT_CHUNK", chunk)
    BlacklistEntry.objects.create(account=user, number="+33612345678")
    text = "Mobile\n0612345678\n0698765432\n0698765432\n0611111111\n06 98 76 54 32\nabc\n"
    imp = _run_import(
        user, text, django_capture_on_commit_callbacks=django_capture_on_commit_callbacks, mode="blacklist"
    )
    assert (imp.imported, imp.duplicates, imp.rejected) == (2, 3, 1)
    assert BlacklistEntry.objects.filter(account=user).count() == 3


def test_deleting_an_account_deletes_its_contacts_and_their_search_rows(user, other_user):
    """Contact.account has no database constraint (imports skip a check per row): Django's
    CASCADE is what removes an account's contacts."""
    from addressbook.models import ContactSearch

    contact = services.contact_create(account=user, mobile="0612345678", last_name="Durand")
    group = GroupFactory(account=user)
    group.contacts.add(contact)
    kept = ContactFactory(account=other_user)
    user.delete()
    assert list(Contact.objects.values_list("id", flat=True)) == [kept.id]
    assert not ContactSearch.objects.filter(contact_id=contact.id).exists()
    assert not Membership.objects.exists()
