import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from addressbook import selectors, services
from addressbook.models import BlacklistEntry, Contact, Membership
from tests.factories import ContactFactory, GroupFactory

pytestmark = pytest.mark.django_db


def _ids(page) -> list[int]:
    return [contact.id for contact in page.object_list]


def _walk(account, query: str = "") -> list[list[int]]:
    """Every page, following "next" from the first page."""
    pages, after = [], None
    while True:
        page = selectors.contact_page(account=account, query=query, after=after)
        pages.append(_ids(page))
        if not page.has_next:
            return pages
        after = page.object_list[-1].id


def test_pages_are_the_accounts_newest_contacts_when_another_account_is_newer(user, other_user):
    """The list walks the (account, -id) index; the other account's newer rows change nothing."""
    mine = ContactFactory.create_batch(120, account=user)
    ContactFactory.create_batch(80, account=other_user)
    newest_first = [c.id for c in reversed(mine)]
    pages = _walk(user)
    assert pages == [newest_first[:50], newest_first[50:100], newest_first[100:]]
    second = selectors.contact_page(account=user, after=pages[0][-1])
    back = selectors.contact_page(account=user, before=second.object_list[0].id)
    assert _ids(back) == newest_first[:50]
    assert back.has_next and not back.has_previous
    assert selectors.contact_page(account=user).count_label == "120"


def _plan(qs) -> str:
    sql, params = qs.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.fixture
def older_and_newer_accounts(user, other_user):
    """30,000 contacts for ``user``, then 3,000 newer ones for ``other_user``, analysed."""
    with connection.cursor() as cursor:
        for account, count in ((user, 30_000), (other_user, 3_000)):
            cursor.execute(
                "INSERT INTO addressbook_contact (account_id, mobile, region, last_name, first_name, email, company, "
                "created_at, updated_at) SELECT %s, '+336' || lpad(n::text, 8, '0'), 'FR', 'Durand', 'Paul', '', '', "
                "now(), now() FROM generate_series(1, %s) n",
                [account.id, count],
            )
        cursor.execute("ANALYZE addressbook_contact")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL plan")
def test_first_page_reads_the_list_index_not_the_primary_key(user, older_and_newer_accounts):
    """One account's contacts older than another's: PostgreSQL must not walk the primary key
    backwards through the other account's rows (EXPLAIN of the page query)."""
    plan = _plan(selectors.contacts_search(account=user)[:51])
    assert "addressbook_contact_list_idx" in plan, plan
    assert "pkey" not in plan, plan


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL plan")
def test_number_search_is_bounded_by_the_number_index(user, older_and_newer_accounts):
    """The number prefix bounds the (account, mobile) index scan: the account must be an
    equality there, not the one-value range of the plain list (which would scan the account)."""
    plan = _plan(selectors.contacts_search(account=user, query="06 00 01 23")[:51])
    assert "addressbook_contact_mobile_idx" in plan and "~>=~" in plan, plan
    assert "Seq Scan on addressbook_contact" not in plan, plan


def test_name_search_reads_its_matches_once_for_the_page_and_the_count(user, other_user):
    BlacklistEntry.objects.create(account=user, number="+33600000067")
    matches = [ContactFactory(account=user, last_name=f"Bernardin {i}", mobile=f"+3360000{i:04d}") for i in range(70)]
    ContactFactory.create_batch(30, account=user, last_name="Martin")
    ContactFactory.create_batch(5, account=other_user, last_name="Bernardin")
    newest_first = [c.id for c in reversed(matches)]
    with CaptureQueriesContext(connection) as queries:
        page = selectors.contact_page(account=user, query="bern")
    assert _ids(page) == newest_first[:50]
    assert page.count_label == "70"
    assert len(queries.captured_queries) == 1  # the matches, their count and the page's rows at once
    assert sum("addressbook_contactsearch" in q["sql"] for q in queries.captured_queries) == 1
    assert {c.id for c in page.object_list if c.blacklisted} == {matches[67].id}
    second = selectors.contact_page(account=user, query="bern", after=page.object_list[-1].id)
    assert _ids(second) == newest_first[50:]
    assert (second.has_next, second.has_previous, second.count_label) == (False, True, "70")
    back = selectors.contact_page(account=user, query="bern", before=second.object_list[0].id)
    assert _ids(back) == newest_first[:50]
    assert (back.has_next, back.has_previous) == (True, False)
    assert "q=bern" in back.next_query
    assert _walk(user, "bern") == [newest_first[:50], newest_first[50:]]
    nothing = selectors.contact_page(account=user, query="zzzz")
    assert (nothing.object_list, nothing.count_label, nothing.has_next) == ([], "0", False)


def test_name_search_beyond_the_count_cap_pages_through_every_match(user, monkeypatch):
    """Past the name search's count cap, the pages walk the contacts newest first instead."""
    monkeypatch.setattr(selectors, "NAME_COUNT_CAP", 60)
    matches = ContactFactory.create_batch(130, account=user, last_name="Bernardin")
    ContactFactory.create_batch(20, account=user, last_name="Martin")
    newest_first = [c.id for c in reversed(matches)]
    page = selectors.contact_page(account=user, query="bernard")
    assert page.count_label == "60+"
    assert _walk(user, "bernard") == [newest_first[:50], newest_first[50:100], newest_first[100:]]
    assert Contact.objects.filter(account=user).count() == 150


@pytest.fixture
def address_book(user, other_user):
    """Contacts whose words start (or only contain) the queries below; the other account has the same ones."""
    names = {
        "dupont": dict(last_name="Dupont", first_name="Jean", email="jean@acme.com"),
        "dupre": dict(last_name="Martin", first_name="Élodie", company="Boulangerie Dupré"),
        "lepont": dict(last_name="Lepont", first_name="Paul", email="paul@example.org"),
        "muller": dict(last_name="Müller", first_name="Zoé", company="Garage du Port"),
    }
    mine = {key: ContactFactory(account=user, **fields) for key, fields in names.items()}
    for fields in names.values():
        ContactFactory(account=other_user, **fields)
    return mine


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("dup", {"dupont", "dupre"}),  # a last name, and the second word of a company
        ("DUPRÉ", {"dupre"}),
        ("dupre", {"dupre"}),  # accents ignored both ways
        ("elodie", {"dupre"}),
        ("acme", {"dupont"}),  # an email's domain
        ("jean@acme", {"dupont"}),
        ("jean dup", {"dupont"}),  # every word must match...
        ("dup jean", {"dupont"}),  # ...in any order
        ("dup paul", set()),
        ("pont", set()),  # the middle of a word does not match
        ("upon", set()),
        ("mull zo", {"muller"}),
        ("port du", {"muller"}),
        ("-", set()),  # no word: nothing to find
    ],
)
def test_name_search_matches_the_start_of_words(user, address_book, query, expected):
    page = selectors.contact_page(account=user, query=query)
    assert {key for key, contact in address_book.items() if contact in page.object_list} == expected
    assert {c.account_id for c in page.object_list} <= {user.id}  # never the other account's twins
    assert page.count_label == str(len(expected))


def test_name_search_within_a_group(user, other_user, address_book):
    group = GroupFactory(account=user)
    Membership.objects.create(group=group, contact=address_book["dupre"])
    page = selectors.contact_page(account=user, query="dup", group_id=group.id)
    assert page.object_list == [address_book["dupre"]]
    assert list(selectors.contacts_search(account=user, query="dup", group_id=group.id)) == [address_book["dupre"]]
    assert selectors.contact_page(account=other_user, query="dup", group_id=group.id).object_list == []


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL plan")
def test_name_search_reads_the_prefix_index_of_the_search_table(user, older_and_newer_accounts):
    """30,000 search rows: the words' matches come from the GIN index of word prefixes on
    addressbook_contactsearch, exact (no recheck of the text), and the contact table is not scanned."""
    ContactFactory.create_batch(20, account=user, last_name="Bernardin")
    services.search_index_refresh(account_id=user.id)
    with connection.cursor() as cursor:
        # As VACUUM or autovacuum would: move the fresh rows from the index's pending list into it.
        cursor.execute("SELECT gin_clean_pending_list('addressbook_contactsearch_prefixes')")
        cursor.execute("ANALYZE addressbook_contactsearch")
    plan = _plan(selectors.name_search_ids(account=user, query="bern paul")[: selectors.NAME_COUNT_CAP + 1])
    assert "Bitmap Index Scan on addressbook_contactsearch_prefixes" in plan, plan
    assert "LIKE" not in plan.upper() and "~~" not in plan, plan
    assert "addressbook_contact " not in plan, plan
    page = selectors.contact_page(account=user, query="bern paul")
    assert page.count_label == "20"


def test_words_longer_than_the_indexed_prefixes_still_match_exactly(user):
    """PostgreSQL's index holds prefixes of up to 12 letters: a longer query word must still be
    compared whole (both names below share their first 12 letters)."""
    long = ContactFactory(account=user, last_name="Schwarzenegger")
    longer = ContactFactory(account=user, last_name="Schwarzeneggerova")
    ContactFactory(account=user, last_name="Schwarz")
    assert selectors.SEARCH_PREFIX_LENGTH == len("SCHWARZENEGG")
    assert {c.id for c in selectors.contacts_search(account=user, query="schwarzenegg")} == {long.id, longer.id}
    assert {c.id for c in selectors.contacts_search(account=user, query="schwarzeneggero")} == {longer.id}
    assert list(selectors.contacts_search(account=user, query="schwarzeneggerx")) == []
