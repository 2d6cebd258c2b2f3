"""Credit movements. The ledger is the only way credits move (DESIGN.md, Money)."""

from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .models import Invoice, InvoiceSequence, LedgerEntry, Order, Pack, Transfer

CREDIT_QUANTUM = Decimal("0.001")


class InsufficientCredits(Exception):
    """The account's balance does not cover the debit. Nothing was written."""

    def __init__(self, *, balance: Decimal, needed: Decimal):
        self.balance, self.needed = balance, needed
        super().__init__(f"Insufficient credits: balance {balance}, needed {needed}.")


def ledger_post(
    *,
    account_id: int,
    kind: str,
    amount: Decimal,
    reference: str = "",
    note: str = "",
    idempotency_key: str | None = None,
    created_by_id: int | None = None,
    campaign_id: int | None = None,
    order_id: int | None = None,
    transfer_id: int | None = None,
) -> tuple[LedgerEntry, bool]:
    """Append one ledger entry and move the account's balance, atomically.

    Locks the account row, refuses a debit beyond the credits available (the balance minus the
    credits reserved for campaigns being sent: ``InsufficientCredits``), and
    returns ``(entry, created)``. With an ``idempotency_key`` already used, returns the existing
    entry and ``created=False``: nothing moves twice. Runs inside the caller's transaction when
    there is one (so a caller can debit and write its own rows all-or-nothing). ``campaign_id``,
    ``order_id`` and ``transfer_id`` record the cause (the transactions page links to it).
    """
    amount = Decimal(amount).quantize(CREDIT_QUANTUM)
    if amount == 0:
        raise ValueError("A ledger entry moves a non-zero amount.")
    if kind not in LedgerEntry.Kind.values:
        raise ValueError(f"Unknown ledger entry kind {kind!r}.")
    User = get_user_model()
    with transaction.atomic():
        account = User.objects.select_for_update().only("id", "credit_balance", "credit_reserved").get(pk=account_id)
        if idempotency_key is not None:
            existing = LedgerEntry.objects.filter(idempotency_key=idempotency_key).first()
            if existing is not None:
                return existing, False
        new_balance = account.credit_balance + amount
        if amount < 0 and new_balance < account.credit_reserved:
            raise InsufficientCredits(balance=account.credits_available, needed=-amount)
        User.objects.filter(pk=account_id).update(credit_balance=F("credit_balance") + amount)
        # Same-key posts for one account serialise on the row lock above, so the check holds.
        entry = LedgerEntry.objects.create(
            account_id=account_id,
            kind=kind,
            amount=amount,
            balance_after=new_balance,
            reference=reference,
            note=note,
            idempotency_key=idempotency_key,
            created_by_id=created_by_id,
            campaign_id=campaign_id,
            order_id=order_id,
            transfer_id=transfer_id,
        )
        # credit alert hook (ACC-9): the balance moved from account.credit_balance to new_balance.
        from accounts.services import credit_alert_check  # accounts.services imports this module

        credit_alert_check(account_id=account_id, balance_before=account.credit_balance, balance_after=new_balance)
    return entry, True


def credits_reserve(*, account_id: int, amount: Decimal) -> None:
    """Hold ``amount`` of the account's available credits (BYD-2): no debit can spend them until
    :func:`credits_release` gives them back. Runs in the caller's transaction, so the caller
    records what the hold is for in the same commit. Raises ``InsufficientCredits``; moves no
    balance and writes no ledger entry (the debit, when it comes, is the ledger entry)."""
    amount = Decimal(amount).quantize(CREDIT_QUANTUM)
    if amount <= 0:
        raise ValueError("A reservation holds a positive amount.")
    User = get_user_model()
    with transaction.atomic():
        account = User.objects.select_for_update().only("id", "credit_balance", "credit_reserved").get(pk=account_id)
        if account.credits_available < amount:
            raise InsufficientCredits(balance=account.credits_available, needed=amount)
        User.objects.filter(pk=account_id).update(credit_reserved=F("credit_reserved") + amount)


def credits_release(*, account_id: int, amount: Decimal) -> None:
    """Give back ``amount`` reserved by :func:`credits_reserve` (in the caller's transaction)."""
    amount = Decimal(amount).quantize(CREDIT_QUANTUM)
    if amount < 0:
        raise ValueError("A release gives back a positive amount.")
    if amount:
        get_user_model().objects.filter(pk=account_id).update(credit_reserved=F("credit_reserved") - amount)


class BillingError(Exception):
    """A billing request refused for a reason the user can read (the message is translated)."""


def credit_adjust(*, account_id: int, amount: Decimal, reason: str, by_user_id: int) -> LedgerEntry:
    """A staff credit adjustment (ADM-1): one ``adjustment`` ledger entry carrying the reason.

    The balance field is never edited directly. A debit beyond the balance raises
    ``InsufficientCredits``; an empty reason raises ``BillingError``.
    """
    if not reason.strip():
        raise BillingError(_("A reason is required."))
    entry, _created = ledger_post(
        account_id=account_id,
        kind=LedgerEntry.Kind.ADJUSTMENT,
        amount=amount,
        reference=str(_("Staff adjustment")),
        note=reason.strip(),
        created_by_id=by_user_id,
    )
    return entry


def order_create(*, account_id: int, pack_id: int, method: str) -> Order:
    """A pending order for an active pack, its price snapshotted (BIL-5). Nothing is credited yet."""
    if method not in Order.Method.values:
        raise BillingError(_("Unknown payment method."))
    try:
        pack = Pack.objects.get(pk=pack_id, active=True)
    except Pack.DoesNotExist:
        raise BillingError(_("This pack is not on sale.")) from None
    return Order.objects.create(
        account_id=account_id, pack=pack, credits=pack.credits, price_eur=pack.price_eur, method=method
    )


def _cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def order_amounts(price_eur: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    """(excl. VAT, VAT, incl. VAT) in euros and cents, as invoiced and charged."""
    excl = _cents(price_eur)
    vat = _cents(excl * Decimal(settings.VAT_RATE) / 100)
    return excl, vat, excl + vat


def _invoice_issue(*, order: Order, now) -> Invoice:
    """Number and freeze the invoice of ``order``. Must run inside the payment transaction.

    The year's sequence row is locked until commit, so concurrent payments take consecutive
    numbers and a rolled-back payment gives its number back: no gaps (BIL-7).
    """
    year = timezone.localtime(now).year
    # INSERT ... ON CONFLICT DO NOTHING: the first payment of a year creates the row without racing.
    InvoiceSequence.objects.bulk_create([InvoiceSequence(year=year, last=0)], ignore_conflicts=True)
    sequence = InvoiceSequence.objects.select_for_update().get(year=year)
    sequence.last += 1
    sequence.save(update_fields=["last"])
    buyer = order.account
    address = "\n".join(
        line
        for line in (
            buyer.address_line1,
            buyer.address_line2,
            f"{buyer.postal_code} {buyer.city}".strip(),
            buyer.country,
        )
        if line
    )
    excl, vat, incl = order_amounts(order.price_eur)
    return Invoice.objects.create(
        order=order,
        number=f"{year}-{sequence.last:06d}",
        year=year,
        sequence=sequence.last,
        issued_at=now,
        buyer_name=buyer.get_full_name() or buyer.account_id,
        buyer_company=buyer.company,
        buyer_address=address,
        buyer_vat_number=buyer.vat_number,
        seller_name=settings.SELLER_NAME,
        seller_address=settings.SELLER_ADDRESS,
        seller_vat_number=settings.SELLER_VAT_NUMBER,
        credits=order.credits,
        unit_price_eur=(order.price_eur / order.credits).quantize(Decimal("0.0001")),
        amount_excl_vat=excl,
        vat_rate=Decimal(settings.VAT_RATE),
        vat_amount=vat,
        amount_incl_vat=incl,
    )


def order_mark_paid(
    *, order_id: int, by_user_id: int | None = None, stripe_session_id: str | None = None
) -> tuple[Order, bool]:
    """Record an order's payment: credit the pack, issue the invoice. Exactly once.

    Used by Stripe's webhook (with ``stripe_session_id``, which must match the order's) and by
    staff in the admin (``by_user_id``). Locks the order: a paid order returns ``(order, False)``
    and changes nothing, so a replayed webhook or a double click credits once. A cancelled order
    raises ``BillingError``. Returns ``(order, True)`` when this call paid it.
    """
    with transaction.atomic():
        order = Order.objects.select_for_update().select_related("account").get(pk=order_id)
        if order.status == Order.Status.PAID:
            return order, False
        if order.status == Order.Status.CANCELLED:
            raise BillingError(_("This order was cancelled."))
        if stripe_session_id is not None and order.stripe_session_id != stripe_session_id:
            raise BillingError(_("The payment does not belong to this order."))
        now = timezone.now()
        order.status = Order.Status.PAID
        order.paid_at = now
        order.marked_paid_by_id = by_user_id
        order.save(update_fields=["status", "paid_at", "marked_paid_by"])
        # The sequence lock is taken last (after the account's) and held only until commit.
        ledger_post(
            account_id=order.account_id,
            kind=LedgerEntry.Kind.PURCHASE,
            amount=Decimal(order.credits),
            reference=order.reference,
            idempotency_key=f"order:{order.uuid}",
            order_id=order.pk,
        )
        _invoice_issue(order=order, now=now)
    return order, True


def order_cancel(*, order_id: int) -> Order:
    """Cancel a pending order (staff, or an abandoned card payment). A paid order cannot be cancelled."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        if order.status == Order.Status.PAID:
            raise BillingError(_("A paid order cannot be cancelled."))
        order.status = Order.Status.CANCELLED
        order.save(update_fields=["status"])
    return order


def _transfer_label(template, account_id: str, reference: str) -> str:
    label = str(template) % {"account": account_id}
    return f"{label} · {reference}"[:200] if reference else label


def transfer_create(*, sender_id: int, recipient_account_id: str, amount: Decimal, reference: str = "") -> Transfer:
    """Move credits to another account now (BIL-8): a ``Transfer`` and two ledger entries.

    Refuses (``BillingError``, nothing written) a non-positive amount or one with more than 3
    decimals, an unknown, inactive or blocked recipient, a blocked sender, oneself, and (``InsufficientCredits``)
    more than the balance. Both accounts are locked in primary-key order so two opposite
    transfers cannot deadlock.
    """
    amount = Decimal(amount)
    if amount <= 0:
        raise BillingError(_("The amount must be positive."))
    if amount != amount.quantize(CREDIT_QUANTUM):
        raise BillingError(_("Use at most 3 decimals."))
    User = get_user_model()
    recipient = User.objects.filter(account_id__iexact=recipient_account_id.strip()).only("id").first()
    if recipient is None:
        raise BillingError(_("No account has this ID."))
    if recipient.pk == sender_id:
        raise BillingError(_("You cannot transfer credits to yourself."))
    with transaction.atomic():
        accounts = {
            a.pk: a
            for a in User.objects.select_for_update()
            .filter(pk__in=[sender_id, recipient.pk])
            .order_by("pk")
            .only("id", "account_id", "is_active", "blocked_at", "credit_balance", "credit_reserved")
        }
        sender, recipient = accounts[sender_id], accounts[recipient.pk]
        if not sender.is_active or sender.blocked_at is not None:
            raise BillingError(_("Your account cannot transfer credits."))
        if not recipient.is_active or recipient.blocked_at is not None:
            raise BillingError(_("This account cannot receive credits."))
        if sender.credits_available < amount:
            raise InsufficientCredits(balance=sender.credits_available, needed=amount)
        transfer = Transfer.objects.create(sender=sender, recipient=recipient, amount=amount, reference=reference)
        ledger_post(
            account_id=sender.pk,
            kind=LedgerEntry.Kind.TRANSFER_OUT,
            amount=-amount,
            reference=_transfer_label(_("To %(account)s"), recipient.account_id, reference),
            transfer_id=transfer.pk,
        )
        ledger_post(
            account_id=recipient.pk,
            kind=LedgerEntry.Kind.TRANSFER_IN,
            amount=amount,
            reference=_transfer_label(_("From %(account)s"), sender.account_id, reference),
            transfer_id=transfer.pk,
        )
    return transfer
