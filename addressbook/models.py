import uuid

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower, Now
from django.utils.translation import gettext_lazy as _


class Contact(models.Model):
    """A person in an account's address book (ADR-1). ``mobile`` is E.164, ``region`` its ISO
    region as libphonenumber sees it (the pricing destination)."""

    # No database-level foreign key: PostgreSQL checks one with a query per inserted row, 3-4 s at
    # the commit of a 1M-row import (a fifth of it, measured). Every write takes the account from
    # the request or the import, and deleting an account deletes its contacts (Django's CASCADE).
    account = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="contacts", db_constraint=False
    )
    mobile = models.CharField(_("mobile"), max_length=16)
    region = models.CharField(_("country"), max_length=2, blank=True)
    last_name = models.CharField(_("last name"), max_length=100, blank=True)
    first_name = models.CharField(_("first name"), max_length=100, blank=True)
    email = models.EmailField(_("email"), max_length=254, blank=True)
    company = models.CharField(_("company"), max_length=200, blank=True)
    # Database defaults too: an import COPYs its new contacts without them (the database stamps
    # the statement's time), which saves formatting two datetimes per row in Python.
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())
    groups = models.ManyToManyField("Group", through="Membership", related_name="contacts", blank=True)

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        indexes = [
            # Contact list: an account's contacts, newest first, keyset-paginated on id.
            models.Index(fields=["account", "-id"], name="addressbook_contact_list_idx"),
            # Lookups by number: equality and ``= ANY`` (import upserts, duplicates page, the composer's
            # typed numbers) and the number search's LIKE 'prefix%'. Pattern ops serve all three; under a
            # collation other than C (C.UTF-8 here) a plain index cannot serve LIKE.
            models.Index(
                fields=["account", "mobile"],
                name="addressbook_contact_mobile_idx",
                opclasses=["int8_ops", "varchar_pattern_ops"],
            ),
        ]

    def __str__(self):
        name = f"{self.first_name} {self.last_name}".strip()
        return f"{name} ({self.mobile})" if name else self.mobile

    def personalisation_fields(self) -> dict[str, str]:
        """Values for ``$nom``, ``$prenom``, ``$email``, ``$societe`` (SND-6)."""
        return {"nom": self.last_name, "prenom": self.first_name, "email": self.email, "societe": self.company}


class ContactSearch(models.Model):
    """The name/company/email search text of one contact (ADR-1): ``addressbook.search.search_text``
    of its last name, first name, company and email, matched by word start
    (``text LIKE '% WORD%'`` per query word).

    A narrow table of its own so that the search index is not maintained on the import's critical
    path: services that change a contact rewrite its row in the same transaction
    (``services.search_index_refresh``); an import's contacts are indexed by a task queued once
    its merge commits. Deleting a contact deletes its row."""

    contact = models.OneToOneField(Contact, primary_key=True, on_delete=models.CASCADE, related_name="search_entry")
    # Filtered after the prefix index (a name search is always within one account): no index of its own.
    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, db_index=False, related_name="+")
    text = models.TextField()

    class Meta:
        verbose_name = _("contact search text")
        verbose_name_plural = _("contact search texts")
        # Name search on PostgreSQL: a GIN index over the words' prefixes, an expression index
        # created by migration 0008 (``addressbook_search_prefixes(text)``).

    def __str__(self):
        return self.text


class Group(models.Model):
    """A named set of contacts (ADR-2). Deleting a group keeps its contacts."""

    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="contact_groups")
    name = models.CharField(_("name"), max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("group")
        verbose_name_plural = _("groups")
        ordering = ["name"]
        constraints = [
            # One group per name per account; imports "create or fill" a group by name.
            models.UniqueConstraint("account", Lower("name"), name="addressbook_group_name_ci_unique"),
        ]

    def __str__(self):
        return self.name


class Membership(models.Model):
    group = models.ForeignKey(Group, on_delete=models.CASCADE)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE)

    class Meta:
        constraints = [
            # Adding a contact twice to a group is a no-op (bulk adds use ignore_conflicts).
            models.UniqueConstraint(fields=["group", "contact"], name="addressbook_membership_unique"),
        ]
        indexes = [
            # A contact's groups (contact page, merge of duplicates).
            models.Index(fields=["contact", "group"], name="addressbook_membership_c_g_idx"),
        ]

    def __str__(self):
        return f"{self.contact_id} in {self.group_id}"


class BlacklistEntry(models.Model):
    """A number that must never receive SMS from this account (ADR-4, SND-9)."""

    class Source(models.TextChoices):
        MANUAL = "manual", _("Added by hand")
        IMPORT = "import", _("Imported")
        STOP = "stop", _("STOP reply")

    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="blacklist")
    number = models.CharField(_("number"), max_length=16)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.MANUAL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("blacklisted number")
        verbose_name_plural = _("blacklist")
        constraints = [
            # One row per number per account; the fan-out and STOP handling upsert on it.
            models.UniqueConstraint(fields=["account", "number"], name="addressbook_blacklist_unique"),
            models.CheckConstraint(
                condition=models.Q(source__in=["manual", "import", "stop"]), name="addressbook_blacklist_source_valid"
            ),
        ]

    def __str__(self):
        return self.number


def _import_upload_to(instance, filename):
    return f"imports/{instance.account_id}/{instance.uuid}/{filename[-100:]}"


class ContactImport(models.Model):
    """One file import (ADR-3): the upload, the user's choices, the live counters and the report.

    Every input row ends in exactly one counter: ``imported + updated + duplicates + rejected ==
    total_rows`` once ``status`` is DONE (rejected rows are listed in ``report`` with line and reason)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for your choices")
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Importing")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    class Mode(models.TextChoices):
        CONTACTS = "contacts", _("Contacts")
        BLACKLIST = "blacklist", _("Blacklist")

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="contact_imports")
    file = models.FileField(upload_to=_import_upload_to, max_length=300)
    original_name = models.CharField(max_length=255)
    file_format = models.CharField(max_length=4)  # csv, xlsx, xls
    encoding = models.CharField(max_length=16, blank=True)
    separator = models.CharField(max_length=1, blank=True)
    has_header = models.BooleanField(default=True)
    mapping = models.JSONField(default=dict, blank=True)  # field name -> 0-based column index
    mode = models.CharField(max_length=9, choices=Mode.choices, default=Mode.CONTACTS)
    group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    consent_at = models.DateTimeField(null=True, blank=True)
    consent_text = models.TextField(blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    imported = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    report = models.FileField(upload_to=_import_upload_to, max_length=300, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # When the contacts this import wrote became findable by name (the task queued after its merge;
    # set at once for a blacklist import). NULL on a DONE contacts import: still indexing.
    search_indexed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("contact import")
        verbose_name_plural = _("contact imports")
        ordering = ["-id"]
        indexes = [
            # Done imports whose contacts are not yet findable by name (a handful at any time): the
            # contact list's "still indexing" notice (by account) and the beat's re-queue scan.
            models.Index(
                fields=["account"],
                name="addressbook_import_search_todo",
                condition=models.Q(status="done", search_indexed_at__isnull=True),
            ),
        ]

    def __str__(self):
        return f"{self.original_name} ({self.status})"

    @property
    def percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        return min(99, self.processed_rows * 100 // self.total_rows) if self.total_rows else 0
