import uuid
from decimal import Decimal

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
    # What caused the movement: the transactions page links to the invoice or the campaign.
    order = models.ForeignKey("billing.Order", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    campaign = models.ForeignKey(
        "campaigns.Campaign", on_delete=models.PROTECT, null=True, blank=True, related_name="ledger_entries"
    )
    transfer = models.ForeignKey(
        "billing.Transfer", on_delete=models.PROTECT, null=True, blank=True, related_name="entries"
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
            # Transactions page, newest first, keyset on (created_at, id): a period filter is an index range.
            models.Index(fields=["account", "-created_at", "-id"], name="billing_ledger_acct_time_idx"),
            # ...and filtered by kind: a rare kind (adjustments) would otherwise walk every entry.
            models.Index(fields=["account", "kind", "-created_at", "-id"], name="billing_ledger_acct_kind_idx"),
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


class Pack(models.Model):
    """A credit pack on sale (BIL-1). Staff set them in the admin; the unit price falls with size."""

    credits = models.PositiveIntegerField(_("credits"))
    price_eur = models.DecimalField(_("price (EUR, excl. VAT)"), max_digits=12, decimal_places=4)
    active = models.BooleanField(_("on sale"), default=True)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        verbose_name = _("credit pack")
        verbose_name_plural = _("credit packs")
        ordering = ["position", "credits"]
        constraints = [
            models.CheckConstraint(condition=models.Q(credits__gt=0), name="billing_pack_credits_positive"),
            models.CheckConstraint(condition=models.Q(price_eur__gt=0), name="billing_pack_price_positive"),
        ]

    def __str__(self):
        return f"{self.credits} credits – {self.price_eur:.2f} €"

    @property
    def unit_price(self) -> Decimal:
        """Euros per credit, 4 places (DESIGN.md, Money)."""
        return (self.price_eur / self.credits).quantize(Decimal("0.0001"))


class Order(models.Model):
    """A pack bought by an account (BIL-5). Pending until paid; paid exactly once (``order_mark_paid``).

    The pack is snapshotted: staff may reprice a pack later without changing past orders.
    """

    class Method(models.TextChoices):
        CARD = "card", _("Card")
        TRANSFER = "transfer", _("Bank transfer")
        CHEQUE = "cheque", _("Cheque")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending payment")
        PAID = "paid", _("Paid")
        CANCELLED = "cancelled", _("Cancelled")

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders")
    pack = models.ForeignKey(Pack, on_delete=models.SET_NULL, null=True, blank=True, related_name="orders")
    credits = models.PositiveIntegerField(_("credits"))
    price_eur = models.DecimalField(_("price (EUR, excl. VAT)"), max_digits=12, decimal_places=4)
    method = models.CharField(_("payment method"), max_length=10, choices=Method.choices)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    stripe_session_id = models.CharField(max_length=255, null=True, blank=True, unique=True)  # noqa: DJ001
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    marked_paid_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status="paid", paid_at__isnull=False) | ~models.Q(status="paid"),
                name="billing_order_paid_has_paid_at",
            ),
        ]
        indexes = [models.Index(fields=["status", "method"], name="billing_order_status_idx")]

    def __str__(self):
        return f"{self.account_id} {self.credits} credits ({self.get_status_display()})"

    @property
    def reference(self) -> str:
        """What the customer writes on a transfer or cheque so staff can match the payment."""
        return f"ORD-{str(self.uuid)[:8].upper()}"


class InvoiceSequence(models.Model):
    """Last invoice number used in a year; locked while numbering so numbers have no gaps (BIL-7)."""

    year = models.PositiveSmallIntegerField(primary_key=True)
    last = models.PositiveIntegerField(default=0)

    def __str__(self):
        return f"{self.year}: {self.last}"


class Invoice(models.Model):
    """The invoice of a paid order, frozen at payment time (the buyer's later profile edits don't change it)."""

    order = models.OneToOneField(Order, on_delete=models.PROTECT, related_name="invoice")
    number = models.CharField(_("number"), max_length=20, unique=True)
    year = models.PositiveSmallIntegerField()
    sequence = models.PositiveIntegerField()
    issued_at = models.DateTimeField(_("issued at"))
    buyer_name = models.CharField(max_length=300)
    buyer_company = models.CharField(max_length=200, blank=True)
    buyer_address = models.TextField(blank=True)
    buyer_vat_number = models.CharField(max_length=32, blank=True)
    seller_name = models.CharField(max_length=200)
    seller_address = models.TextField(blank=True)
    seller_vat_number = models.CharField(max_length=32, blank=True)
    credits = models.PositiveIntegerField()
    unit_price_eur = models.DecimalField(max_digits=12, decimal_places=4)
    amount_excl_vat = models.DecimalField(max_digits=12, decimal_places=2)
    vat_rate = models.DecimalField(max_digits=5, decimal_places=2)
    vat_amount = models.DecimalField(max_digits=12, decimal_places=2)
    amount_incl_vat = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        verbose_name = _("invoice")
        verbose_name_plural = _("invoices")
        ordering = ["-year", "-sequence"]
        constraints = [
            models.UniqueConstraint(fields=["year", "sequence"], name="billing_invoice_year_sequence_unique"),
        ]

    def __str__(self):
        return self.number


class Transfer(models.Model):
    """Credits moved from one account to another (BIL-8); its two ledger entries point here."""

    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="transfers_sent")
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="transfers_received")
    amount = models.DecimalField(max_digits=14, decimal_places=3)
    reference = models.CharField(_("reference"), max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("transfer")
        verbose_name_plural = _("transfers")
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="billing_transfer_amount_positive"),
            models.CheckConstraint(
                condition=~models.Q(sender=models.F("recipient")), name="billing_transfer_not_to_self"
            ),
        ]

    def __str__(self):
        return f"{self.sender_id} -> {self.recipient_id}: {self.amount}"
