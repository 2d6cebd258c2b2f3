"""Contact list at N contacts: first page, search by number, search by name (the start of a last
name, "mamam"), a page deep in the list. Each p95 is compared with one exact count(*) of the
account's contacts measured in the same run (interleaved). Queries per full request (session,
user, page, capped count, groups, indexing notice) are counted through the real view; any OFFSET
beyond 10,000 fails the figure."""

from __future__ import annotations

import re
import statistics
import time

from . import datagen
from .common import Context, count_seconds, p95, page_client, result

REPEATS = 40


def run(ctx: Context) -> dict[str, dict]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from addressbook import selectors, services
    from tests.factories import UserFactory

    size = ctx.size
    account, other = UserFactory(), UserFactory()
    with ctx.raw_connection() as conn:
        conn.execute("TRUNCATE addressbook_membership, addressbook_contact RESTART IDENTITY CASCADE")
        ctx.copy_file(
            conn,
            table="addressbook_contact",
            columns=datagen.CONTACT_COPY_COLUMNS,
            path=datagen.existing_contacts_tsv(ctx.cache, size, account.id),
        )
        ctx.copy_file(
            conn,
            table="addressbook_contact",
            columns=datagen.CONTACT_COPY_COLUMNS,
            path=datagen.existing_contacts_tsv(ctx.cache, max(1000, size // 10), other.id),
        )
        conn.execute("VACUUM ANALYZE addressbook_contact")
    # Name search reads ContactSearch: index the copied contacts as the import's follow-up task does.
    for owner in (account, other):
        services.search_index_refresh(account_id=owner.id)
    with ctx.raw_connection() as conn:
        conn.execute("VACUUM ANALYZE addressbook_contactsearch")
        deep_id = conn.execute(
            "SELECT id FROM addressbook_contact WHERE account_id = %s ORDER BY id DESC OFFSET %s LIMIT 1",
            (account.id, int(size * 0.9)),
        ).fetchone()[0]
    name = datagen.LAST_NAMES[len(datagen.LAST_NAMES) // 3][:5].lower()  # the start of a word (ADR-1)
    scenarios = {
        "first_page": {},
        "search_number": {"q": "06 12 34"},
        "search_name": {"q": name},
        "deep_page": {"after": deep_id},
    }
    out = {}
    for label, params in scenarios.items():
        with page_client(account) as client, CaptureQueriesContext(connection) as queries:
            response = client.get("/contacts/", params)
        assert response.status_code == 200, response.status_code
        offsets = [int(m) for q in queries.captured_queries for m in re.findall(r"OFFSET (\d+)", q["sql"])]
        counts, pages = [], []
        kwargs = {"query": params.get("q", ""), "after": params.get("after")}
        for _ in range(REPEATS):
            counts.append(count_seconds("addressbook_contact", account.id))
            start = time.perf_counter()
            page = selectors.contact_page(account=account, **kwargs)
            pages.append(time.perf_counter() - start)
        base = statistics.median(counts) * 1000
        value = p95(pages) * 1000
        out[f"contact_list_{label}"] = result(
            value=value,
            unit="ms p95",
            baseline=base,
            target=0.5,
            lower_is_better=True,
            queries=len(queries.captured_queries),
            rows=len(page.object_list),
            count_label=page.count_label,
            max_offset=max(offsets, default=0),
        )
        if len(queries.captured_queries) > 6 or max(offsets, default=0) > 10_000:
            out[f"contact_list_{label}"]["pass"] = False
    return out
