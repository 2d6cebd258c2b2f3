import pytest

from addressbook.models import Contact

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_import_a_csv_and_see_the_report(browser_login, user, live_server, tmp_path):
    path = tmp_path / "clients.csv"
    path.write_text("Nom;Prénom;Mobile;Société\nDurand;Léa;06 12 34 56 78;ACME\nBad;Row;123;\n", encoding="utf-8")
    page = browser_login(user)
    page.goto(f"{live_server.url}/contacts/imports/new/")
    page.set_input_files("#id_file", str(path))
    page.get_by_role("button", name="Upload and preview").click()
    page.get_by_test_id("preview").wait_for()
    assert "Léa" in page.get_by_test_id("preview").inner_text()
    assert page.locator("#id_map_mobile").input_value() == "2"
    page.fill("#id_group_name", "Clients")
    page.get_by_role("button", name="Import", exact=True).click()
    assert page.get_by_role("alert").first.is_visible()  # consent box not ticked
    page.check("#id_consent")
    page.get_by_role("button", name="Import", exact=True).click()
    report = page.get_by_test_id("import-report")
    report.wait_for()
    assert page.get_by_test_id("imported").inner_text() == "1"
    assert page.get_by_test_id("rejected").inner_text() == "1"
    assert page.get_by_role("link", name="Download the rejected rows (CSV, with line and reason)").is_visible()
    assert Contact.objects.get(account=user).groups.get().name == "Clients"
    page.goto(f"{live_server.url}/contacts/?q=06+12")
    assert "Durand" in page.locator("table").inner_text()
