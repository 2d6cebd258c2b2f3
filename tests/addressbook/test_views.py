import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from openpyxl import load_workbook

from addressbook.models import BlacklistEntry, Contact, ContactImport, Group
from tests.factories import ContactFactory, GroupFactory

pytestmark = pytest.mark.django_db


def test_contact_list_is_keyset_paginated_with_few_queries(
    client_logged, user, other_user, django_assert_max_num_queries
):
    contacts = ContactFactory.create_batch(60, account=user)
    ContactFactory(account=other_user, last_name="Other")
    BlacklistEntry.objects.create(account=user, number=contacts[-1].mobile)
    with django_assert_max_num_queries(6):
        response = client_logged.get(reverse("addressbook:contacts"))
    page = response.context["page"]
    assert [c.id for c in page.object_list] == [c.id for c in reversed(contacts)][:50]
    assert page.count_label == "60"
    assert page.object_list[0].blacklisted and not page.object_list[1].blacklisted
    assert b'data-testid="blacklisted"' in response.content
    assert b"Other" not in response.content
    with django_assert_max_num_queries(6):
        response = client_logged.get(reverse("addressbook:contacts") + "?" + page.next_query)
    assert [c.id for c in response.context["page"].object_list] == [c.id for c in reversed(contacts)][50:]
    back = client_logged.get(reverse("addressbook:contacts") + "?" + response.context["page"].previous_query)
    assert [c.id for c in back.context["page"].object_list] == [c.id for c in page.object_list]


@pytest.mark.parametrize(
    ("query", "expected"),
    [("06 12 34", ["A"]), ("+336123", ["A"]), ("0033698", ["B"]), ("dur", ["A"]), ("acme", ["B"]), ("b@ex", ["B"])],
)
def test_search_by_number_name_company_email(client_logged, user, other_user, query, expected):
    ContactFactory(account=user, mobile="+33612345678", last_name="Durand", first_name="A")
    ContactFactory(
        account=user, mobile="+33698765432", last_name="Zola", first_name="B", company="ACME", email="b@ex.fr"
    )
    ContactFactory(account=other_user, mobile="+33612345679", last_name="Durand", first_name="X")
    response = client_logged.get(reverse("addressbook:contacts"), {"q": query})
    assert [c.first_name for c in response.context["page"].object_list] == expected


def test_other_accounts_objects_are_404(client, user, other_user):
    contact = ContactFactory(account=other_user)
    group = GroupFactory(account=other_user)
    entry = BlacklistEntry.objects.create(account=other_user, number="+33612345678")
    imp = ContactImport.objects.create(account=other_user, original_name="x.csv", file_format="csv", file="x.csv")
    client.force_login(user)
    for url, method in [
        (reverse("addressbook:contact_edit", args=[contact.id]), "get"),
        (reverse("addressbook:contact_delete", args=[contact.id]), "post"),
        (reverse("addressbook:group_delete", args=[group.id]), "post"),
        (reverse("addressbook:blacklist_remove", args=[entry.id]), "post"),
        (reverse("addressbook:import_detail", args=[imp.uuid]), "get"),
        (reverse("addressbook:import_progress", args=[imp.uuid]), "get"),
        (reverse("addressbook:import_report", args=[imp.uuid]), "get"),
    ]:
        assert getattr(client, method)(url).status_code == 404, url
    mine = ContactFactory(account=user)
    response = client.post(reverse("addressbook:contacts_bulk"), {"action": "add", "group": group.id, "ids": [mine.id]})
    assert response.status_code == 404
    client.post(reverse("addressbook:contacts_bulk"), {"action": "delete", "ids": [contact.id]})
    assert Contact.objects.filter(id=contact.id).exists()
    assert Group.objects.filter(id=group.id).exists()


def test_create_contact_shows_the_reason_of_a_refused_number(client_logged, user):
    response = client_logged.post(reverse("addressbook:contact_create"), {"mobile": "01 42 68 53 00"})
    assert response.status_code == 200
    assert "Landline" in response.content.decode()
    assert not Contact.objects.exists()
    response = client_logged.post(reverse("addressbook:contact_create"), {"mobile": "06 12 34 56 78", "last_name": "D"})
    assert response.status_code == 302
    assert Contact.objects.get().mobile == "+33612345678"


def test_contact_page_sets_groups(client_logged, user):
    contact = ContactFactory(account=user)
    g1, g2 = GroupFactory(account=user), GroupFactory(account=user)
    response = client_logged.post(
        reverse("addressbook:contact_edit", args=[contact.id]), {"groups_submit": "1", "groups": [g1.id, g2.id]}
    )
    assert response.status_code == 302
    assert set(contact.groups.all()) == {g1, g2}
    client_logged.post(
        reverse("addressbook:contact_edit", args=[contact.id]), {"groups_submit": "1", "groups": [g2.id]}
    )
    assert list(contact.groups.all()) == [g2]


def test_bulk_create_group_and_group_sizes(client_logged, user):
    contacts = ContactFactory.create_batch(3, account=user)
    response = client_logged.post(
        reverse("addressbook:contacts_bulk"),
        {"action": "new_group", "group_name": "Clients", "ids": [c.id for c in contacts[:2]]},
    )
    assert response.status_code == 302
    page = client_logged.get(reverse("addressbook:groups"))
    assert [(g.name, g.size) for g in page.context["groups"]] == [("Clients", 2)]


def test_duplicates_page_and_merge(client_logged, user):
    ContactFactory(account=user, mobile="+33612345678", last_name="A")
    ContactFactory(account=user, mobile="+33612345678", email="a@example.com")
    ContactFactory(account=user, mobile="+33698765432")
    response = client_logged.get(reverse("addressbook:duplicates"))
    assert [m for m, _ in response.context["duplicates"]] == ["+33612345678"]
    client_logged.post(reverse("addressbook:duplicates_merge"), {"mobile": "+33612345678"})
    assert Contact.objects.filter(account=user).count() == 2
    assert client_logged.get(reverse("addressbook:duplicates")).context["duplicates"] == []


def test_blacklist_page_add_and_remove(client_logged, user):
    response = client_logged.post(reverse("addressbook:blacklist"), {"number": "06 12 34 56 78"})
    assert response.status_code == 302
    entry = BlacklistEntry.objects.get(account=user)
    assert entry.number == "+33612345678"
    assert "+33612345678" in client_logged.get(reverse("addressbook:blacklist")).content.decode()
    client_logged.post(reverse("addressbook:blacklist_remove", args=[entry.id]))
    assert not BlacklistEntry.objects.exists()


def test_exports_escape_formulas(client_logged, user, other_user):
    ContactFactory(account=user, last_name='=HYPERLINK("http://evil")', company="+cmd", first_name="Léa")
    ContactFactory(account=other_user, last_name="Other")
    response = client_logged.get(reverse("addressbook:export_csv"))
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["Nom", "Prénom", "Mobile", "Email", "Société", "Pays"]
    assert rows[1][0] == '\'=HYPERLINK("http://evil")' and rows[1][4] == "'+cmd" and rows[1][1] == "Léa"
    assert rows[1][2].startswith("'+33")  # E.164 starts with +: escaped too, still readable
    assert len(rows) == 2
    response = client_logged.get(reverse("addressbook:export_xlsx"))
    sheet = load_workbook(io.BytesIO(response.content)).active
    assert sheet["A2"].value == '\'=HYPERLINK("http://evil")'
    assert sheet.max_row == 2


def test_import_flow_upload_map_consent_progress_report(client_logged, user, django_capture_on_commit_callbacks):
    upload = SimpleUploadedFile(
        "c.csv", "Prénom;Nom;Téléphone\r\nLéa;Durand;06 12 34 56 78\r\nBad;Row;123\r\n".encode("cp1252")
    )
    response = client_logged.post(reverse("addressbook:import_upload"), {"file": upload})
    imp = ContactImport.objects.get(account=user)
    assert response.url == reverse("addressbook:import_detail", args=[imp.uuid])
    page = client_logged.get(response.url)
    assert "Léa" in page.content.decode()
    form = page.context["form"]
    assert (form["map_first_name"].value(), form["map_last_name"].value(), form["map_mobile"].value()) == (
        "0",
        "1",
        "2",
    )
    fields = {"separator": ";", "encoding": "cp1252", "has_header": "on", "mode": "contacts", "map_first_name": "0"}
    fields |= {"map_last_name": "1", "map_mobile": "2", "start": "1"}
    refused = client_logged.post(response.url, fields)
    assert "agreed" in refused.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        done = client_logged.post(response.url, {**fields, "consent": "on"})
    assert done.status_code == 302
    progress = client_logged.get(reverse("addressbook:import_progress", args=[imp.uuid]))
    assert b"hx-trigger" not in progress.content  # finished: polling stops
    assert progress.context["imp"].imported == 1 and progress.context["imp"].rejected == 1
    report = client_logged.get(reverse("addressbook:import_report", args=[imp.uuid]))
    assert b"".join(report.streaming_content).decode().splitlines()[1].startswith("3,Too short.")


def test_import_in_progress_polls(client_logged, user):
    imp = ContactImport.objects.create(
        account=user,
        original_name="x.csv",
        file_format="csv",
        file="x.csv",
        status="running",
        total_rows=200,
        processed_rows=50,
    )
    response = client_logged.get(reverse("addressbook:import_progress", args=[imp.uuid]))
    assert b'hx-trigger="every 1s"' in response.content
    assert b'value="25"' in response.content


def test_bad_upload_shows_an_error(client_logged, user):
    response = client_logged.post(
        reverse("addressbook:import_upload"), {"file": SimpleUploadedFile("x.xlsx", b"PK\x03\x04broken")}
    )
    assert response.status_code == 200
    assert "damaged" in response.content.decode()
    assert not ContactImport.objects.exists()


def test_login_required(client):
    assert client.get(reverse("addressbook:contacts")).status_code == 302


def test_search_and_deep_pages_use_no_offset(client_logged, user, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    contacts = ContactFactory.create_batch(120, account=user, last_name="Durand")
    for params in ({"q": "durand"}, {"q": "06 0"}, {"after": contacts[30].id}, {"q": "dur", "after": contacts[100].id}):
        with django_assert_max_num_queries(6), CaptureQueriesContext(connection) as ctx:
            response = client_logged.get(reverse("addressbook:contacts"), params)
        assert response.status_code == 200
        assert len(response.context["page"].object_list) == min(
            50, len([c for c in contacts if c.id < params.get("after", 10**9)])
        )
        assert not any("OFFSET" in q["sql"] for q in ctx.captured_queries)
