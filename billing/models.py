from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class LedgerKind(models.TextChoices):
    PURCHASE = "purchase", _("Purchase")
    BONUS = "bonus", _("Bonus")
    SEND = "send", _("Send")
    REFUND = "refund", _("Refund")
    TRANSFER_IN = "transfer_in", _("Transfer received")
    TRANSFER_OUT = "transfer_out", _("Transfer sent")
    ADJUSTMENT = "adjustment", _("Staff adjustment")


class LedgerEntry(models.Model):
    """One credit movement. Append-only: never updated, never deleted (BIL-6).

    ``amount`` is signed (debits negative); ``balance_after`` is the account's balance once this
    entry applied. The account's ``credit_balance`` always equals the sum of its entries
    (checked by ``manage.py ledger_check``). Written only by ``billing.services.ledger_post``.
    """

    Kind = LedgerKind

    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="ledger_entries")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    amount = models.DecimalField(max_digits=14, decimal_places=3)
    balance_after = models.DecimalField(max_digits=14, decimal_places=3)
    reference = models.CharField(max_length=200, blank=True)
    note = models.TextField(blank=True)
    # Makes a movement happen at most once (a webhook replayed, a task run twice).
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001 - NULL: no key
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        ordering = ["-id"]
        constraints = [
            # Exactly-once credit movements keyed by their cause.
            models.UniqueConstraint(fields=["idempotency_key"], name="billing_ledger_idempotency_key_unique"),
            models.CheckConstraint(condition=models.Q(kind__in=LedgerKind.values), name="billing_ledger_kind_valid"),
            models.CheckConstraint(
                condition=models.Q(balance_after__gte=0), name="billing_ledger_balance_after_non_negative"
            ),
            models.CheckConstraint(condition=~models.Q(amount=0), name="billing_ledger_amount_non_zero"),
        ]
        indexes = [
            # Transactions page: an account's entries, newest first (keyset on id).
            models.Index(fields=["account", "-id"], name="billing_ledger_account_id_idx"),
        ]

    def __str__(self):
        return f"{self.account_id} {self.kind} {self.amount:+}"


class Rate(models.Model):
    """Credits per message part for a message type and destination (BIL-2).

    ``region`` is the ISO region of the number as libphonenumber sees it (``MQ`` for
    Martinique, not ``FR``), so overseas departments are their own destinations.
    """

    class Kind(models.TextChoices):
        SMS = "sms", _("Pro SMS")
        VOICE = "voice", _("Voice SMS")

    kind = models.CharField(max_length=8, choices=Kind.choices)
    region = models.CharField(_("country"), max_length=2)
    country_name = models.CharField(max_length=100, blank=True)
    calling_code = models.PositiveSmallIntegerField(null=True, blank=True)
    credits_per_part = models.DecimalField(max_digits=8, decimal_places=3)

    class Meta:
        verbose_name = _("rate")
        verbose_name_plural = _("rate card")
        ordering = ["country_name", "kind"]
        constraints = [
            # Pricing looks a destination up by (type, region): one rate each.
            models.UniqueConstraint(fields=["kind", "region"], name="billing_rate_kind_region_unique"),
            models.CheckConstraint(condition=models.Q(credits_per_part__gt=0), name="billing_rate_positive"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.region}: {self.credits_per_part}"
