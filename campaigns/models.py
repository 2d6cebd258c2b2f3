import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Campaign(models.Model):
    """One send: a text to a set of recipients, now or at ``scheduled_at`` (SND-2, SND-11).

    States::

        draft ──> scheduled ──(beat claims when due)──> dispatching ──> sending ──> done
                     │                                      │
                     └──> cancelled (deleted by the user)   └──> failed (e.g. insufficient credit)

    Recipients are the typed ``numbers`` (E.164) plus ``contacts`` and ``groups``; expansion at
    dispatch time dedupes them, drops blacklisted numbers and writes one ``Message`` each.
    While ``dispatching``, the campaign's cost is held in ``credits_reserved`` (BYD-2) and its
    messages are written and sent chunk by chunk; the debit is posted when the last chunk is
    written (``dispatching -> sending``). ``expansion_lease_until`` marks a running expansion:
    past it, housekeeping resumes the expansion of a lost worker.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SCHEDULED = "scheduled", _("Scheduled")
        DISPATCHING = "dispatching", _("Preparing")
        SENDING = "sending", _("Sending")
        DONE = "done", _("Sent")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    class Kind(models.TextChoices):
        SMS = "sms", _("Pro SMS")
        VOICE = "voice", _("Voice SMS")

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="campaigns")
    kind = models.CharField(_("type"), max_length=8, choices=Kind.choices, default=Kind.SMS)
    text = models.TextField(_("text"))
    sender = models.CharField(_("sender"), max_length=11, blank=True)
    is_marketing = models.BooleanField(_("marketing message"), default=False)
    numbers = models.JSONField(_("numbers"), default=list, blank=True)
    contacts = models.ManyToManyField("addressbook.Contact", blank=True, related_name="+")
    groups = models.ManyToManyField("addressbook.Group", blank=True, related_name="+")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    scheduled_at = models.DateTimeField(_("send date"), null=True, blank=True)
    gateway = models.CharField(max_length=32, default="default")
    copied_from = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    failure_reason = models.TextField(blank=True)
    recipients_count = models.PositiveIntegerField(default=0)
    duplicates_count = models.PositiveIntegerField(default=0)
    blacklisted_count = models.PositiveIntegerField(default=0)
    credits_debited = models.DecimalField(max_digits=14, decimal_places=3, default=0)
    credits_reserved = models.DecimalField(max_digits=14, decimal_places=3, default=0)
    expansion_lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # "Delete" on a sent campaign hides it from the list; messages and accounting stay (SND-13).
    hidden_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    status__in=["draft", "scheduled", "dispatching", "sending", "done", "failed", "cancelled"]
                ),
                name="campaigns_campaign_status_valid",
            ),
            models.CheckConstraint(condition=models.Q(kind__in=["sms", "voice"]), name="campaigns_campaign_kind_valid"),
        ]
        indexes = [
            # Beat's dispatcher: due scheduled campaigns, oldest first.
            models.Index(
                fields=["scheduled_at"], condition=models.Q(status="scheduled"), name="campaigns_campaign_due_idx"
            ),
            # Housekeeping: expansions whose worker was lost (resumed past their lease).
            models.Index(
                fields=["dispatched_at"],
                condition=models.Q(status="dispatching"),
                name="campaigns_campaign_expand_idx",
            ),
            # "Scheduled SMS" / "Sent SMS" lists: an account's campaigns by status, newest first.
            models.Index(fields=["account", "status", "-id"], name="campaigns_campaign_list_idx"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.uuid}"

    def can_be_edited(self) -> bool:
        return self.status in (self.Status.DRAFT, self.Status.SCHEDULED)


class Message(models.Model):
    """One recipient of a campaign: the personalised text, its price, its carrier status.

    ``status`` only moves forward (SND-15): a value is a rank, and a receipt applies only when
    its rank is higher than the current one; ``received`` and the failures are final.
    """

    class Status(models.IntegerChoices):
        QUEUED = 10, _("Queued")
        SUBMITTING = 20, _("Sending")
        SENT = 30, _("Sent")
        DELIVERED_OPERATOR = 40, _("Delivered to operator")
        PARTIALLY_RECEIVED = 50, _("Partially received")
        RECEIVED = 60, _("Received")
        INVALID = 70, _("Invalid recipient")
        BLACKLISTED = 71, _("Blacklisted")
        INSUFFICIENT_CREDIT = 72, _("Insufficient credit")
        REJECTED = 73, _("Rejected by the carrier")
        EXPIRED = 74, _("Expired")
        OPERATOR_TEMPORARY = 75, _("Temporary operator error")
        OPERATOR_PERMANENT = 76, _("Permanent operator error")
        HANDSET_TEMPORARY = 77, _("Temporary handset error")
        HANDSET_PERMANENT = 78, _("Permanent handset error")
        ANTISPAM = 79, _("Blocked by anti-spam")

    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="messages")
    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    phone = models.CharField(max_length=16)
    region = models.CharField(max_length=2)
    text = models.TextField()
    parts = models.PositiveSmallIntegerField(default=1)
    credits = models.DecimalField(max_digits=10, decimal_places=3)
    status = models.PositiveSmallIntegerField(choices=Status.choices, default=Status.QUEUED)
    gateway = models.CharField(max_length=32, default="default")
    carrier_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001 - NULL until submitted
    error = models.CharField(max_length=255, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Exactly-once submission: a batch claims its messages (QUEUED -> SUBMITTING) with a token;
    # only the holder records their results, and housekeeping re-queues claims older than a lease.
    claim_token = models.UUIDField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    status_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        constraints = [
            # One message per distinct number per campaign (SND-5); expansion relies on it.
            models.UniqueConstraint(fields=["campaign", "phone"], name="campaigns_message_campaign_phone_unique"),
            # Receipts find their message by carrier id; a carrier id is never reused.
            models.UniqueConstraint(
                fields=["gateway", "carrier_id"],
                condition=models.Q(carrier_id__isnull=False),
                name="campaigns_message_carrier_id_unique",
            ),
        ]
        indexes = [
            # Submission queue scan: a campaign's messages still to submit.
            models.Index(fields=["campaign", "id"], condition=models.Q(status=10), name="campaigns_message_queued_idx"),
            # Receipt report: counts and filter by status within a campaign.
            models.Index(fields=["campaign", "status", "id"], name="campaigns_message_report_idx"),
            # Reply matching: the last message an account sent to a number.
            models.Index(fields=["account", "phone", "-id"], name="campaigns_message_reply_idx"),
            # Reply matching across accounts: the last message a gateway sent to a number.
            models.Index(fields=["gateway", "phone", "-id"], name="campaigns_message_gw_phone_idx"),
            # Housekeeping: claims left by a dead worker (SUBMITTING past the lease).
            models.Index(fields=["claimed_at"], condition=models.Q(status=20), name="campaigns_message_claimed_idx"),
        ]

    def __str__(self):
        return f"{self.phone} ({self.get_status_display()})"


class MessageCount(models.Model):
    """How many messages of a campaign are in each status (SND-16's counts), kept by the database.

    Rows are deltas ``(campaign, status, count)``: the sum of ``count`` over a campaign's rows of
    one status is exactly how many of its messages have that status, in any transaction, without
    reading ``campaigns_message``. Triggers on ``campaigns_message`` insert them in the same
    transaction as the change (migration 0004), so every writer is counted, raw SQL and COPY
    included:

    - PostgreSQL: statement-level ``AFTER INSERT / UPDATE / DELETE`` triggers with transition
      tables add one row per (campaign, status) whose count a statement changed (the UPDATE
      trigger sums -1 per old row and +1 per new row, so rows whose status stayed cancel out),
      and ``AFTER TRUNCATE`` empties the table;
    - SQLite: row-level triggers (``AFTER UPDATE OF status, campaign_id`` when one changed).

    Deltas are only ever inserted, never updated in place, so concurrent workers never wait on
    one another's counter row. ``campaigns.counts.message_counts_squash`` (beat, every 30 s)
    folds each campaign's rows into one per status (``is_squashed``). There is no foreign key
    (``db_constraint=False``): the rows are derived data, and those of a campaign whose
    messages were deleted sum to zero and disappear at the next squash.
    """

    campaign = models.ForeignKey(
        Campaign, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    status = models.PositiveSmallIntegerField(choices=Message.Status.choices)
    count = models.IntegerField()  # negative for messages that left ``status``
    is_squashed = models.BooleanField(default=False)

    class Meta:
        verbose_name = _("message count")
        verbose_name_plural = _("message counts")
        indexes = [
            # Report and campaign detail: SUM(count) GROUP BY status of one campaign.
            models.Index(fields=["campaign", "status"], name="campaigns_count_campaign_idx"),
            # Squash: the campaigns that have deltas to fold.
            models.Index(
                fields=["campaign"], condition=models.Q(is_squashed=False), name="campaigns_count_unsquashed_idx"
            ),
        ]

    def __str__(self):
        return f"campaign {self.campaign_id} status {self.status}: {self.count:+d}"


class Template(models.Model):
    """A saved text, usable from the New SMS page (SND-14)."""

    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sms_templates")
    name = models.CharField(_("name"), max_length=100)
    text = models.TextField(_("text"))
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("template")
        verbose_name_plural = _("templates")
        ordering = ["name"]

    def __str__(self):
        return self.name


class Inbound(models.Model):
    """A message received from a handset: a reply to one of our messages (SND-8), maybe a STOP."""

    account = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    message = models.ForeignKey(Message, on_delete=models.PROTECT, null=True, blank=True, related_name="replies")
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, null=True, blank=True, related_name="replies")
    sender = models.CharField(max_length=16)
    recipient = models.CharField(max_length=32, blank=True)
    text = models.TextField()
    is_stop = models.BooleanField(default=False)
    gateway = models.CharField(max_length=32, default="default")
    carrier_id = models.CharField(max_length=64, blank=True)
    received_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("received reply")
        verbose_name_plural = _("received replies")
        constraints = [
            # A replayed carrier callback adds no second reply.
            models.UniqueConstraint(
                fields=["gateway", "carrier_id"], condition=~models.Q(carrier_id=""), name="campaigns_inbound_unique"
            ),
        ]
        indexes = [
            # "Received replies" page: an account's replies, newest first.
            models.Index(fields=["account", "-id"], name="campaigns_inbound_account_idx"),
        ]

    def __str__(self):
        return f"{self.sender}: {self.text[:40]}"


class PartReceipt(models.Model):
    """The last status a carrier reported for one part of a multi-part message.

    Per-part receipts fold into the message's single status (all parts received -> received;
    some received, the others failed -> partially received); see ``campaigns.receipts``.
    """

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="+")
    part = models.PositiveSmallIntegerField()
    status = models.PositiveSmallIntegerField(choices=Message.Status.choices)

    class Meta:
        constraints = [
            # One row per part; receipts upsert it forward-only.
            models.UniqueConstraint(fields=["message", "part"], name="campaigns_partreceipt_unique"),
        ]

    def __str__(self):
        return f"{self.message_id}#{self.part} {self.status}"


class PendingReceipt(models.Model):
    """A receipt that arrived before its message's carrier id was recorded (the carrier's
    receipt overtook its own submit response). Re-applied when the carrier id is recorded."""

    gateway = models.CharField(max_length=32)
    carrier_id = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField(choices=Message.Status.choices)
    part = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=255, blank=True)
    at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            # Recording carrier ids looks up the receipts waiting for them.
            models.Index(fields=["gateway", "carrier_id"], name="campaigns_pendingreceipt_idx"),
        ]

    def __str__(self):
        return f"{self.gateway}:{self.carrier_id} {self.status}"


class GatewayHealth(models.Model):
    """Per-gateway counters shown in the admin (ADM-1): last submit, errors. Updated once per batch."""

    alias = models.CharField(max_length=32, unique=True)
    last_submit_at = models.DateTimeField(null=True, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=255, blank=True)
    submitted = models.PositiveBigIntegerField(default=0)
    rejected = models.PositiveBigIntegerField(default=0)
    errors = models.PositiveBigIntegerField(default=0)

    class Meta:
        verbose_name = _("gateway health")
        verbose_name_plural = _("gateway health")

    def __str__(self):
        return self.alias

    @property
    def error_rate(self) -> float:
        total = self.submitted + self.rejected + self.errors
        return (self.rejected + self.errors) / total if total else 0.0
