"""Address book writes and the reads other apps use (DESIGN.md: apps talk through services).

Duplicates policy (ADR-1, ADR-5): one number per account appears once by default. Creating a
contact whose number exists is refused unless the user ticks "add anyway"; imports update the
existing contact(s) with the file's non-empty values and count later repeats of a number in the
same file as "duplicates skipped". Duplicates that exist anyway (added on purpose, or older data)
are listed on the duplicates page and merged there. So there is no unique constraint on
(account, mobile), only an index.
"""

from __future__ import annotations

import csv
import logging
import queue
import re
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.uploadedfile import UploadedFile
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, transaction
from django.db.models import Count
from django.db.models.functions import Lower
from django.utils import timezone, translation
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _

from . import importers
from .models import BlacklistEntry, Contact, ContactImport, ContactSearch, Group, Membership
from .phones import PhoneNormalizer, normalize_phone
from .search import search_text

logger = logging.getLogger(__name__)

_CHUNK = 5000
_IMPORT_CHUNK = 20_000
_FIELD_LIMITS = {"last_name": 100, "first_name": 100, "email": 254, "company": 200}
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

CONSENT_TEXT = _("I confirm that the people in this file agreed to receive SMS from me, and I can prove it on request.")


def blacklisted_numbers(*, account_id: int, numbers: Iterable[str]) -> set[str]:
    """The subset of ``numbers`` (E.164) on the account's blacklist. One query per 5,000 numbers.

    On PostgreSQL the numbers go as one array parameter (``= ANY``): an ``IN`` list of 5,000
    parameters costs more to build and parse than the lookup itself (the campaign fan-out calls
    this for every chunk of recipients)."""
    numbers = list(dict.fromkeys(numbers))
    found: set[str] = set()
    postgres = connection.vendor == "postgresql"
    for start in range(0, len(numbers), _CHUNK):
        chunk = numbers[start : start + _CHUNK]
        if postgres:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT number FROM {BlacklistEntry._meta.db_table} WHERE account_id = %s AND number = ANY(%s)",
                    [account_id, chunk],
                )
                found.update(number for (number,) in cursor.fetchall())
        else:
            found.update(
                BlacklistEntry.objects.filter(account_id=account_id, number__in=chunk).values_list("number", flat=True)
            )
    return found


# --- contacts -------------------------------------------------------------------------------------


def _normalise_mobile(account, raw: str, *, allow_landline: bool = False) -> tuple[str, str]:
    result = normalize_phone(raw or "", default_region=account.default_region or "FR", allow_landline=allow_landline)
    if not result.valid:
        raise ValidationError({"mobile": _t("This number was refused: %(reason)s") % {"reason": result.error}})
    return result.e164, result.region or ""


def contact_create(
    *,
    account,
    mobile: str,
    last_name: str = "",
    first_name: str = "",
    email: str = "",
    company: str = "",
    allow_duplicate: bool = False,
) -> Contact:
    """Create a contact from a number in any format SND-4 accepts (stored E.164).

    Raises ValidationError (keyed ``mobile``) for an invalid number, or when the number is already
    in the account's address book and ``allow_duplicate`` is false."""
    e164, region = _normalise_mobile(account, mobile)
    if not allow_duplicate and Contact.objects.filter(account=account, mobile=e164).exists():
        raise ValidationError(
            {"mobile": _t("%(number)s is already in your address book.") % {"number": e164}}, code="duplicate"
        )
    contact = Contact(
        account=account,
        mobile=e164,
        region=region,
        last_name=last_name,
        first_name=first_name,
        email=email,
        company=company,
    )
    contact.full_clean(exclude=["account"])
    with transaction.atomic():
        contact.save()
        search_index_refresh(account_id=contact.account_id, contact_ids=[contact.pk])
    return contact


def contact_update(
    *, contact: Contact, mobile: str, last_name: str, first_name: str, email: str, company: str
) -> Contact:
    """Change every field of ``contact``; the number is re-normalised (ValidationError if refused)."""
    contact.mobile, contact.region = _normalise_mobile(contact.account, mobile)
    contact.last_name, contact.first_name, contact.email, contact.company = last_name, first_name, email, company
    contact.full_clean(exclude=["account"])
    with transaction.atomic():
        contact.save()
        search_index_refresh(account_id=contact.account_id, contact_ids=[contact.pk])
    return contact


def contacts_delete(*, account, contact_ids: Iterable[int]) -> int:
    """Delete the given contacts of ``account`` (ids of other accounts are ignored); returns how many."""
    with transaction.atomic():
        _search_lock(account.pk)
        deleted, per_model = Contact.objects.filter(account=account, id__in=list(contact_ids)).delete()
    return per_model.get("addressbook.Contact", 0)


def contacts_delete_numbers(*, account_id: int, numbers) -> int:
    """Delete the account's contacts whose mobile is in ``numbers`` (E.164 values or a one-column
    subquery, e.g. a campaign's failed numbers for SND-16); returns how many were deleted."""
    with transaction.atomic():
        _search_lock(account_id)
        deleted, per_model = Contact.objects.filter(account_id=account_id, mobile__in=numbers).delete()
    return per_model.get("addressbook.Contact", 0)


# --- name search ----------------------------------------------------------------------------------

_SEARCH_LOCK = 7_302
_SEARCH_BATCH = 5000
SEARCH_REQUEUE_AFTER = timedelta(minutes=10)


def _search_lock(account_id: int) -> None:
    """Take the account's search lock until the transaction ends (PostgreSQL; SQLite has one writer).

    A refresh reads contacts, then writes their search rows: without this lock, a contact edited
    or deleted in between would get back the text read before (or a row pointing to nothing).
    Every writer of search rows and every delete of contacts takes it first."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_SEARCH_LOCK, account_id])


def _search_upsert(account_id: int, rows: list[tuple]) -> int:
    """Write the search text of ``(id, last_name, first_name, company, email)`` contact rows:
    INSERT ... ON CONFLICT (contact_id) DO UPDATE, skipping rows whose text is unchanged (no
    new row version, no search index entries). Returns the rows inserted or changed."""
    if not rows:
        return 0
    ids = [row[0] for row in rows]
    texts = [search_text(last, first, company, email) for _id, last, first, company, email in rows]
    table = ContactSearch._meta.db_table
    upsert = f"ON CONFLICT (contact_id) DO UPDATE SET text = excluded.text WHERE {table}.text <> excluded.text"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Two array parameters, no model instances: 1M rows in 31 s here, bulk_create 62 s.
            cursor.execute(
                f"INSERT INTO {table} (contact_id, account_id, text) "
                f"SELECT contact_id, %s, text FROM unnest(%s::bigint[], %s::text[]) AS r(contact_id, text) {upsert}",
                [account_id, ids, texts],
            )
        else:
            cursor.executemany(
                f"INSERT INTO {table} (contact_id, account_id, text) VALUES (%s, %s, %s) {upsert}",
                [(contact_id, account_id, text) for contact_id, text in zip(ids, texts, strict=True)],
            )
        return cursor.rowcount


def search_index_refresh(
    *, account_id: int, contact_ids: Iterable[int] | None = None, since: datetime | None = None
) -> int:
    """(Re)write the name-search rows (``ContactSearch``) of the account's contacts: those in
    ``contact_ids``, or those updated at or after ``since``, or all of them when neither is
    given. Returns the number of rows inserted or changed (a row whose text is already right is
    left alone).

    Batches of 5,000 contacts by id, each read and upserted in one transaction under the
    account's search lock; called inside a transaction, the rows commit with it. Contacts of
    other accounts in ``contact_ids`` are ignored."""
    contacts = Contact.objects.filter(account_id=account_id).order_by("id")
    if since is not None:
        contacts = contacts.filter(updated_at__gte=since)
    ids = sorted(set(contact_ids)) if contact_ids is not None else None
    written = last_id = offset = 0
    while True:
        if ids is None:
            batch = contacts.filter(id__gt=last_id)[:_SEARCH_BATCH]
        else:
            batch = contacts.filter(id__in=ids[offset : offset + _SEARCH_BATCH])
            offset += _SEARCH_BATCH
        with transaction.atomic():
            _search_lock(account_id)
            rows = list(batch.values_list("id", "last_name", "first_name", "company", "email"))
            written += _search_upsert(account_id, rows)
        done = (offset >= len(ids)) if ids is not None else (len(rows) < _SEARCH_BATCH)
        if done:
            return written
        last_id = rows[-1][0]


def contact_import_search_enqueue(*, contact_import: ContactImport, since: datetime | None = None) -> None:
    """Make a finished import's contacts findable by name (ADR-3): once the current transaction
    commits, queue ``contacts_search_refresh`` for the account's contacts updated since ``since``:
    the time the import stamped its contacts with (the database's clock on PostgreSQL). Without
    it (housekeeping), since an hour before the import was created, a margin for clocks that
    disagree; re-reading unchanged contacts writes nothing. A blacklist import writes no contact
    and is marked indexed at once."""
    imp = contact_import
    if imp.mode == ContactImport.Mode.BLACKLIST:
        imp.search_indexed_at = timezone.now()
        ContactImport.objects.filter(pk=imp.pk).update(search_indexed_at=imp.search_indexed_at)
        return
    from .tasks import contacts_search_refresh

    since = since or imp.created_at - timedelta(hours=1)
    contacts_search_refresh.delay_on_commit(imp.account_id, since.isoformat(), import_id=imp.pk)


def contact_import_search_indexed(*, import_id: int) -> None:
    """Record that the import's contacts are findable by name (idempotent: the first time stays)."""
    ContactImport.objects.filter(pk=import_id, search_indexed_at__isnull=True).update(search_indexed_at=timezone.now())


def contact_imports_search_requeue(*, limit: int = 100) -> int:
    """Queue the name-search indexing again for contact imports done more than 10 minutes ago
    whose contacts are still not indexed (a lost task, a worker restarted mid-way, a deploy during
    an import). Indexing twice does no harm. Returns how many imports were queued."""
    stale = list(
        ContactImport.objects.filter(
            status=ContactImport.Status.DONE,
            search_indexed_at__isnull=True,
            finished_at__lt=timezone.now() - SEARCH_REQUEUE_AFTER,
        ).order_by("finished_at")[:limit]
    )
    for imp in stale:
        contact_import_search_enqueue(contact_import=imp)
    return len(stale)


# --- groups ---------------------------------------------------------------------------------------


def group_create(*, account, name: str, contact_ids: Iterable[int] = ()) -> Group:
    """Create a group named ``name`` (unique per account, case-insensitive) holding the given contacts."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": _t("Give the group a name.")})
    try:
        with transaction.atomic():
            group = Group.objects.create(account=account, name=name)
    except IntegrityError:
        raise ValidationError({"name": _t("You already have a group with this name.")}) from None
    group_add_contacts(group=group, contact_ids=contact_ids)
    return group


def group_get_or_create(*, account, name: str) -> Group:
    """The account's group named ``name`` (case-insensitive), created if missing."""
    name = name.strip()[:100]
    group = Group.objects.filter(account=account).annotate(lname=Lower("name")).filter(lname=name.lower()).first()
    return group or Group.objects.create(account=account, name=name)


def group_add_contacts(*, group: Group, contact_ids: Iterable[int]) -> int:
    """Add contacts of the group's account to ``group`` (already-members are skipped); returns how many were given."""
    ids = list(
        Contact.objects.filter(account_id=group.account_id, id__in=list(contact_ids)).values_list("id", flat=True)
    )
    Membership.objects.bulk_create(
        [Membership(group=group, contact_id=cid) for cid in ids], ignore_conflicts=True, batch_size=_CHUNK
    )
    return len(ids)


def group_remove_contacts(*, group: Group, contact_ids: Iterable[int]) -> int:
    """Remove the given contacts from ``group`` (the contacts stay in the address book)."""
    deleted, _ = Membership.objects.filter(group=group, contact_id__in=list(contact_ids)).delete()
    return deleted


def contact_set_groups(*, contact: Contact, group_ids: Iterable[int]) -> None:
    """Make ``contact`` a member of exactly the given groups of its account."""
    wanted = set(
        Group.objects.filter(account_id=contact.account_id, id__in=list(group_ids)).values_list("id", flat=True)
    )
    Membership.objects.filter(contact=contact).exclude(group_id__in=wanted).delete()
    Membership.objects.bulk_create([Membership(group_id=g, contact=contact) for g in wanted], ignore_conflicts=True)


def group_delete(*, group: Group) -> None:
    """Delete a group; its contacts stay (only the memberships go)."""
    group.delete()


# --- blacklist ------------------------------------------------------------------------------------


def blacklist_add(*, account, number: str, source: str = BlacklistEntry.Source.MANUAL) -> BlacklistEntry:
    """Blacklist a number (any format; landlines accepted). Idempotent. ValidationError if unreadable."""
    e164, _region = _normalise_mobile(account, number, allow_landline=True)
    entry, _created = BlacklistEntry.objects.get_or_create(account=account, number=e164, defaults={"source": source})
    return entry


def blacklist_remove(*, account, entry_ids: Iterable[int]) -> int:
    deleted, _ = BlacklistEntry.objects.filter(account=account, id__in=list(entry_ids)).delete()
    return deleted


# --- duplicates -----------------------------------------------------------------------------------


def duplicates_merge(*, account, mobile: str) -> Contact:
    """Merge every contact of ``account`` with number ``mobile`` into the oldest one: each field
    takes the longest non-empty value, group memberships are the union; the others are deleted."""
    with transaction.atomic():
        # Before the row locks: a refresh holding the search lock may be waiting to check one of these rows.
        _search_lock(account.pk)
        contacts = list(Contact.objects.select_for_update().filter(account=account, mobile=mobile).order_by("id"))
        if len(contacts) < 2:
            raise ValidationError(_t("There is nothing to merge for this number."))
        keep, others = contacts[0], contacts[1:]
        for field in ("last_name", "first_name", "email", "company", "region"):
            setattr(keep, field, max((getattr(c, field) for c in contacts), key=len))
        keep.save()
        search_index_refresh(account_id=account.pk, contact_ids=[keep.pk])
        group_ids = set(Membership.objects.filter(contact__in=others).values_list("group_id", flat=True))
        Membership.objects.bulk_create([Membership(group_id=g, contact=keep) for g in group_ids], ignore_conflicts=True)
        Contact.objects.filter(id__in=[c.id for c in others]).delete()
    return keep


# --- import ---------------------------------------------------------------------------------------


def contact_import_create(*, account, upload: UploadedFile) -> ContactImport:
    """Store an uploaded file after checking it can be read (size, type, encoding, non-empty).

    Raises ValidationError with a user-facing reason; nothing is stored then."""
    limit = settings.ADDRESSBOOK_IMPORT_MAX_BYTES
    if upload.size > limit:
        raise ValidationError(
            _t("The file is too big (%(size)d MB; the limit is %(limit)d MB).")
            % {"size": upload.size // 2**20, "limit": limit // 2**20}
        )
    with tempfile.NamedTemporaryFile(suffix=Path(upload.name).suffix[:8]) as tmp:
        for chunk in upload.chunks():
            tmp.write(chunk)
        tmp.flush()
        try:
            info = importers.inspect_file(Path(tmp.name), filename=upload.name)
        except importers.FileRejected as exc:
            raise ValidationError(str(exc)) from exc
    upload.seek(0)
    imp = ContactImport(
        account=account,
        original_name=upload.name[:255],
        file_format=info.file_format,
        encoding=info.encoding,
        separator=info.separator,
        has_header=importers.guess_has_header(info.preview[0]),
    )
    imp.mapping = _guess_mapping(info.preview, imp.has_header)
    imp.file.save(upload.name, upload, save=False)
    imp.save()
    return imp


def _guess_mapping(preview: list[list[str]], has_header: bool) -> dict[str, int]:
    mapping = importers.guess_mapping(preview[0]) if has_header else {}
    if "mobile" not in mapping:
        column = importers.guess_mobile_column(preview[1:] if has_header else preview)
        if column is not None and column not in mapping.values():
            mapping["mobile"] = column
    return mapping


def contact_import_preview(
    *, contact_import: ContactImport, encoding: str = "", separator: str = ""
) -> importers.FileInfo:
    """The first rows read with the given (or stored) encoding and separator. Raises FileRejected."""
    return importers.inspect_file(
        Path(contact_import.file.path),
        filename=contact_import.original_name,
        encoding=encoding or contact_import.encoding,
        separator=separator or contact_import.separator,
    )


def contact_import_start(
    *,
    contact_import: ContactImport,
    mapping: dict[str, int],
    has_header: bool,
    consent: bool,
    mode: str = ContactImport.Mode.CONTACTS,
    group_name: str = "",
    encoding: str = "",
    separator: str = "",
) -> ContactImport:
    """Record the user's choices and the SMS consent (SND-18), then queue the import task.

    Raises ValidationError when the consent box is unticked, the mobile column is missing, or
    the import already started."""
    if contact_import.status != ContactImport.Status.PENDING:
        raise ValidationError(_t("This import has already started."))
    if not consent and mode == ContactImport.Mode.CONTACTS:
        raise ValidationError({"consent": _t("Confirm that these people agreed to receive your SMS.")})
    if "mobile" not in mapping:
        raise ValidationError({"mobile": _t("Choose the column holding the mobile numbers.")})
    from .tasks import contact_import_task

    with transaction.atomic():
        imp = ContactImport.objects.select_for_update().get(pk=contact_import.pk)
        if imp.status != ContactImport.Status.PENDING:
            raise ValidationError(_t("This import has already started."))
        imp.mapping = {k: int(v) for k, v in mapping.items() if k in importers.FIELDS}
        imp.has_header = has_header
        imp.mode = mode
        imp.encoding = encoding or imp.encoding
        imp.separator = separator or imp.separator
        if consent:
            imp.consent_at = timezone.now()
            imp.consent_text = str(CONSENT_TEXT)
        if group_name.strip() and mode == ContactImport.Mode.CONTACTS:
            imp.group = group_get_or_create(account=imp.account, name=group_name)
        imp.status = ContactImport.Status.QUEUED
        imp.save()
        contact_import_task.delay_on_commit(imp.pk)
    return imp


_ROW_FIELDS = ("last_name", "first_name", "email", "company")


def _too_long(values: tuple[str, ...]) -> str | None:
    for field, value in zip(_ROW_FIELDS, values, strict=True):
        if len(value) > _FIELD_LIMITS[field]:
            return _t("%(field)s longer than %(limit)d characters.") % {"field": field, "limit": _FIELD_LIMITS[field]}
    return None


def _rows_for(
    imp: ContactImport, records: Iterator[list[str]], report: csv.writer, counters: dict[str, int]
) -> Iterator[tuple[list[tuple], list[int]]]:
    """Read, validate and normalise the file; yield the valid rows chunk by chunk as
    ``(line, mobile, region, last_name, first_name, email, company)`` tuples, with their numbers
    as integers (a second list), and write rejected ones to ``report``. A number's first valid
    line wins: its later lines are counted as duplicates, not yielded. ``counters`` gets
    ``processed``, ``rejected`` and ``duplicates`` (updated at each chunk)."""
    normalize = PhoneNormalizer(
        default_region=imp.account.default_region or "FR", allow_landline=imp.mode == ContactImport.Mode.BLACKLIST
    ).normalize
    email_ok = _EMAIL_RE.match
    col_mobile = imp.mapping["mobile"]
    columns = [imp.mapping.get(field) for field in _ROW_FIELDS]
    max_last, max_first, max_email, max_company = (_FIELD_LIMITS[field] for field in _ROW_FIELDS)
    skip = 1 if imp.has_header else 0
    chunk: list[tuple] = []
    numbers: list[int] = []
    processed = rejected = duplicates = 0
    seen: set[int] = set()  # the numbers met so far, as integers: ~60 MB for 1M numbers
    for line, record in enumerate(records, start=1):
        if line <= skip or not any(record):
            continue  # the header; blank lines are not rows
        processed += 1
        width = len(record)
        raw = record[col_mobile] if col_mobile < width else ""
        values = tuple(record[i] if i is not None and i < width else "" for i in columns)
        last, first, email, company = values
        if not raw:
            reason = _t("No mobile number.")
        else:
            result = normalize(raw)
            if result.e164 is None:
                reason = result.error
            elif email and not email_ok(email):
                reason = _t("Invalid email address.")
            elif len(last) > max_last or len(first) > max_first or len(email) > max_email or len(company) > max_company:
                reason = _too_long(values)
            else:
                number = int(result.e164[1:])
                if number in seen:
                    duplicates += 1
                    continue
                seen.add(number)
                chunk.append((line, result.e164, result.region or "", last, first, email, company))
                numbers.append(number)
                if len(chunk) >= _IMPORT_CHUNK:
                    counters.update(processed=processed, rejected=rejected, duplicates=duplicates)
                    yield chunk, numbers
                    chunk, numbers = [], []
                continue
        rejected += 1
        report.writerow([line, reason, *record])
    counters.update(processed=processed, rejected=rejected, duplicates=duplicates)
    if chunk:
        yield chunk, numbers


_STAGE = "addressbook_import_stage"  # valid rows, one per number: a chunk (PostgreSQL) or the file (SQLite)
_COLUMNS = ("line", "mobile", "region", "last_name", "first_name", "email", "company")
_ROW_TYPES = (
    "line integer, mobile varchar(16), region varchar(2), last_name text, first_name text, email text, company text"
)


def _stage(cursor, chunk: list[tuple]) -> None:
    if connection.vendor == "postgresql":
        # COPY is ~3x faster than INSERT; psycopg formats (and escapes) each row in C.
        with cursor.cursor.copy(f"COPY {_STAGE} ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
            write = copy.write_row
            for row in chunk:
                write(row)
    else:
        cursor.executemany(f"INSERT INTO {_STAGE} ({', '.join(_COLUMNS)}) VALUES (%s, %s, %s, %s, %s, %s, %s)", chunk)


_MERGE_FIELDS = ("last_name", "first_name", "email", "company")
# Only rows that change are written: re-importing the same file rewrites nothing.
_UPDATE_FROM_STAGE = (
    "UPDATE addressbook_contact AS c SET "
    + ", ".join(f"{f} = CASE WHEN f.{f} <> '' THEN f.{f} ELSE c.{f} END" for f in _MERGE_FIELDS)
    + f", updated_at = %s FROM {_STAGE} AS f WHERE c.account_id = %s AND c.mobile = f.mobile AND ("
    + " OR ".join(f"(f.{f} <> '' AND f.{f} <> c.{f})" for f in _MERGE_FIELDS)
    + ")"
)
_GROUP_FROM_STAGE = (
    f"INSERT INTO addressbook_membership (group_id, contact_id) SELECT %s, c.id FROM {_STAGE} f "
    f"JOIN addressbook_contact c ON c.account_id = %s AND c.mobile = f.mobile ON CONFLICT DO NOTHING"
)


def _merge(cursor, imp: ContactImport, now) -> dict[str, int]:
    """Move the staged rows into the blacklist or the address book, then empty the stage.

    The staged numbers are each the first line of their number in the file (``_rows_for`` drops
    the repeats), so a contact with one of them existed before the import. Called per chunk for
    a blacklist import on PostgreSQL, once for the whole file on SQLite (PostgreSQL loads
    contacts with ``_ContactLoader``). Returns this call's counters."""
    account_id = imp.account_id
    cursor.execute(f"SELECT count(*) FROM {_STAGE}")
    staged = cursor.fetchone()[0]
    counts = {"imported": 0, "updated": 0, "duplicates": 0}
    if imp.mode == ContactImport.Mode.BLACKLIST:
        cursor.execute(
            f"INSERT INTO addressbook_blacklistentry (account_id, number, source, created_at) "
            f"SELECT %s, mobile, %s, %s FROM {_STAGE} WHERE true ON CONFLICT (account_id, number) DO NOTHING",
            [account_id, BlacklistEntry.Source.IMPORT, now],
        )
        counts["imported"] = cursor.rowcount
        counts["duplicates"] = staged - cursor.rowcount  # already blacklisted
    else:
        cursor.execute(_UPDATE_FROM_STAGE, [now, account_id])
        cursor.execute(
            f"INSERT INTO addressbook_contact (account_id, mobile, region, {', '.join(_MERGE_FIELDS)}, "
            f"created_at, updated_at) SELECT %s, f.mobile, f.region, {', '.join('f.' + f for f in _MERGE_FIELDS)}, "
            f"%s, %s FROM {_STAGE} AS f WHERE NOT EXISTS (SELECT 1 FROM addressbook_contact c "
            f"WHERE c.account_id = %s AND c.mobile = f.mobile) ORDER BY f.line",
            [account_id, now, now, account_id],
        )
        counts["imported"] = cursor.rowcount
        counts["updated"] = staged - cursor.rowcount
        if imp.group_id:
            cursor.execute(_GROUP_FROM_STAGE, [imp.group_id, account_id])
    cursor.execute(f"TRUNCATE {_STAGE}" if connection.vendor == "postgresql" else f"DELETE FROM {_STAGE}")
    return counts


class _ContactLoader:
    """Loads a contact import's chunks on PostgreSQL, inside the import's transaction, as they
    are read: new numbers are inserted into the address book chunk by chunk; numbers the account
    already had are staged, and update their contacts in one statement at the end.

    The reading thread and this one share the GIL, and Python is the slower side of the import
    (PostgreSQL was mostly idle): rows are COPYed without their timestamps, which formatting two
    datetimes per row in Python cost about 3 s per million.

    Why not look the numbers up per chunk: the planner's statistics cannot follow a table the
    transaction grows by a million rows, and a chunk planned on them hashed or rescanned the
    account's contacts (a 1M-row import became quadratic); one lookup per row through the index
    cost 6 s per million. The account's numbers are read once instead, as integers (about 70 MB
    per million contacts in the worker)."""

    def __init__(self, cursor, imp: ContactImport, now):
        self._cursor, self._imp, self._now = cursor, imp, now
        cursor.execute("SELECT max(id) FROM addressbook_contact WHERE account_id = %s", [imp.account_id])
        self._last_id_before = cursor.fetchone()[0] or 0
        self._known: set[int] = set()
        with connection.chunked_cursor() as numbers:  # a server-side cursor: the rows come in batches
            numbers.execute("SELECT mobile FROM addressbook_contact WHERE account_id = %s", [imp.account_id])
            while rows := numbers.fetchmany(50_000):
                self._known.update(int(mobile[1:]) for (mobile,) in rows if mobile[1:].isdigit())
        self.imported = self.updated = 0

    def add(self, chunk: list[tuple], numbers: list[int]) -> None:
        """Load a chunk of ``_rows_for`` rows; ``numbers`` are their numbers as integers."""
        known = self._known
        new, old = [], []
        for row, number in zip(chunk, numbers, strict=True):
            (old if number in known else new).append(row)
        if old:
            _stage(self._cursor, old)
            self.updated += len(old)
        if new:
            # Seven plain columns: the timestamps are the columns' database default (the time of
            # the COPY statement, after ``self._now``, the transaction's time).
            account_id = self._imp.account_id
            columns = ("account_id", "mobile", "region", *_MERGE_FIELDS)
            with self._cursor.cursor.copy(f"COPY addressbook_contact ({', '.join(columns)}) FROM STDIN") as copy:
                write = copy.write_row
                for _line, mobile, region, last, first, email, company in new:
                    write((account_id, mobile, region, last, first, email, company))
            self.imported += len(new)

    def finish(self) -> dict[str, int]:
        cursor, imp = self._cursor, self._imp
        if self.updated:
            cursor.execute(f"ANALYZE {_STAGE}")
            cursor.execute(_UPDATE_FROM_STAGE, [self._now, imp.account_id])
        if imp.group_id:
            cursor.execute(_GROUP_FROM_STAGE, [imp.group_id, imp.account_id])
            # The new contacts: past the account's last id before the import, stamped during it
            # (COPY's default is each statement's time). A contact added by hand meanwhile
            # would join the group too.
            cursor.execute(
                "INSERT INTO addressbook_membership (group_id, contact_id) SELECT %s, id FROM addressbook_contact "
                "WHERE account_id = %s AND id > %s AND created_at >= %s ON CONFLICT DO NOTHING",
                [imp.group_id, imp.account_id, self._last_id_before, self._now],
            )
        return {"imported": self.imported, "updated": self.updated, "duplicates": 0}


class _FileReader:
    """Reads, validates and normalises an import's file in a thread of its own while the caller
    writes to the database, so that reading (Python) and loading (PostgreSQL) overlap on two
    cores: at 1M rows each takes seconds. The thread never touches the database.

    Iterating yields ``("total", estimate)`` once, ``("chunk", rows, numbers, counters)`` per
    chunk, then ``("end", counters)`` (as ``_rows_for`` yields and counts them); an exception
    raised while reading is raised again in the caller. At most two chunks wait in the queue."""

    def __init__(self, imp: ContactImport, report: csv.writer):
        self._imp, self._report = imp, report
        self._queue: queue.Queue = queue.Queue(maxsize=2)
        self._stop = threading.Event()
        self._language = translation.get_language()
        self._thread = threading.Thread(target=self._read, name=f"import-{imp.pk}-reader", daemon=True)

    def __enter__(self) -> _FileReader:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()  # the caller stopped early (an error): let the thread end
        self._thread.join()

    def __iter__(self) -> Iterator[tuple]:
        while True:
            item = self._queue.get()
            if item[0] == "error":
                raise item[1]
            yield item
            if item[0] == "end":
                return

    def _put(self, item: tuple) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _read(self) -> None:
        imp = self._imp
        counters = {"processed": 0, "rejected": 0, "duplicates": 0}
        try:
            with translation.override(self._language):
                estimate, records = importers.open_records(
                    Path(imp.file.path),
                    file_format=imp.file_format,
                    encoding=imp.encoding or "utf-8",
                    separator=imp.separator or ",",
                )
                if not self._put(("total", max(0, estimate - imp.has_header))):
                    return
                for chunk, numbers in _rows_for(imp, records, self._report, counters):
                    if not self._put(("chunk", chunk, numbers, dict(counters))):
                        return
        except BaseException as exc:  # handed to the caller, which decides
            self._put(("error", exc))
            return
        self._put(("end", counters))


class _Progress:
    """Writes an import's live counters for the progress bar. On PostgreSQL the merge runs in one
    long transaction, so the counters go through a connection of their own (autocommit): the
    progress page sees them while the import's transaction is still open."""

    def __init__(self, imp: ContactImport):
        self._pk = imp.pk
        self._conn = connections.create_connection(DEFAULT_DB_ALIAS) if connection.vendor == "postgresql" else None

    def save(self, **counters: int) -> None:
        if self._conn is None:
            ContactImport.objects.filter(pk=self._pk).update(**counters)
            return
        sets = ", ".join(f"{ContactImport._meta.get_field(name).column} = %s" for name in counters)
        sql = f"UPDATE {ContactImport._meta.db_table} SET {sets} WHERE id = %s"
        with self._conn.cursor() as cursor:
            cursor.execute(sql, [*counters.values(), self._pk])

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


def contact_import_run(*, import_id: int) -> ContactImport:
    """Run a queued import (the Celery task calls this): read and validate the file in a thread
    (``_FileReader``), stage the valid rows (COPY on PostgreSQL) and merge them into the address
    book in one transaction — a failure changes nothing.

    On PostgreSQL each chunk of 20,000 rows is loaded as soon as it is read (``_ContactLoader``,
    or merged into the blacklist), so the database works while the file is read. SQLite stages
    the whole file first and merges it at the end, so that its single writer lock is held only
    for the merge. The counters are saved per chunk for the progress bar."""
    claimed = ContactImport.objects.filter(pk=import_id, status=ContactImport.Status.QUEUED).update(
        status=ContactImport.Status.RUNNING
    )
    imp = ContactImport.objects.select_related("account").get(pk=import_id)
    if not claimed:
        return imp  # already run (a redelivered task)
    postgres = connection.vendor == "postgresql"
    now = timezone.now()
    merged = {"imported": 0, "updated": 0, "duplicates": 0}
    read = {"processed": 0, "rejected": 0, "duplicates": 0}
    report_file = tempfile.TemporaryFile("w+", encoding="utf-8", newline="")
    report = csv.writer(report_file)
    report.writerow(["line", "reason", "values"])
    progress = _Progress(imp)

    def merge(counts: dict[str, int]) -> None:
        for name, value in counts.items():
            merged[name] += value

    try:
        with connection.cursor() as cursor, _FileReader(imp, report) as reader:
            cursor.execute(f"DROP TABLE IF EXISTS {_STAGE}")
            cursor.execute(f"CREATE TEMP TABLE {_STAGE} ({_ROW_TYPES})")
            try:
                with transaction.atomic() if postgres else nullcontext():
                    loader = None
                    if postgres:
                        # Two imports into one account at once would both insert a new number: serialise them.
                        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [7_301, imp.account_id])
                        # The contacts' timestamps: the database's transaction time (``_ContactLoader``).
                        cursor.execute("SELECT now()")
                        now = cursor.fetchone()[0]
                        if imp.mode == ContactImport.Mode.CONTACTS:
                            loader = _ContactLoader(cursor, imp, now)
                    for item in reader:
                        if item[0] == "total":
                            imp.total_rows = item[1]
                            progress.save(total_rows=imp.total_rows)
                            continue
                        read = item[-1]
                        if item[0] == "end":
                            break
                        if loader:
                            loader.add(item[1], item[2])
                        else:
                            _stage(cursor, item[1])
                            if postgres:
                                merge(_merge(cursor, imp, now))
                        progress.save(processed_rows=read["processed"], rejected=read["rejected"])
                    if loader:
                        merge(loader.finish())
                if not postgres:
                    with transaction.atomic():
                        merge(_merge(cursor, imp, now))
            finally:
                cursor.execute(f"DROP TABLE IF EXISTS {_STAGE}")
    except importers.FileRejected as exc:
        return _import_failed(imp, str(exc))
    except Exception:
        logger.exception("Contact import %s failed", imp.uuid)
        return _import_failed(imp, _t("The import failed unexpectedly; nothing was changed. Please try again."))
    finally:
        progress.close()
    imp.processed_rows = imp.total_rows = read["processed"]
    imp.rejected = read["rejected"]
    imp.imported, imp.updated = merged["imported"], merged["updated"]
    imp.duplicates = read["duplicates"] + merged["duplicates"]
    if imp.rejected:
        report_file.seek(0)
        imp.report.save("rejected-rows.csv", File(report_file), save=False)
    report_file.close()
    imp.status = ContactImport.Status.DONE
    imp.finished_at = timezone.now()
    imp.save()
    contact_import_search_enqueue(contact_import=imp, since=now)
    return imp


def _import_failed(imp: ContactImport, message: str) -> ContactImport:
    ContactImport.objects.filter(pk=imp.pk).update(
        status=ContactImport.Status.FAILED, error=message, finished_at=timezone.now()
    )
    imp.refresh_from_db()
    return imp


def group_sizes(*, account) -> list[Group]:
    """The account's groups with ``size`` (members) annotated, by name."""
    return list(Group.objects.filter(account=account).annotate(size=Count("membership")).order_by("name"))
