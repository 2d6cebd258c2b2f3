"""Credit movements. The ledger is the only way credits move (DESIGN.md, Money)."""

from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F

from .models import LedgerEntry

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
) -> tuple[LedgerEntry, bool]:
    """Append one ledger entry and move the account's balance, atomically.

    Locks the account row, refuses a debit beyond the balance (``InsufficientCredits``), and
    returns ``(entry, created)``. With an ``idempotency_key`` already used, returns the existing
    entry and ``created=False``: nothing moves twice. Runs inside the caller's transaction when
    there is one (so a caller can debit and write its own rows all-or-nothing).
    """
    amount = Decimal(amount).quantize(CREDIT_QUANTUM)
    if amount == 0:
        raise ValueError("A ledger entry moves a non-zero amount.")
    if kind not in LedgerEntry.Kind.values:
        raise ValueError(f"Unknown ledger entry kind {kind!r}.")
    User = get_user_model()
    with transaction.atomic():
        account = User.objects.select_for_update().only("id", "credit_balance").get(pk=account_id)
        if idempotency_key is not None:
            existing = LedgerEntry.objects.filter(idempotency_key=idempotency_key).first()
            if existing is not None:
                return existing, False
        new_balance = account.credit_balance + amount
        if new_balance < 0:
            raise InsufficientCredits(balance=account.credit_balance, needed=-amount)
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
        )
        from accounts.services import credit_alert_check  # accounts.services imports this module

        credit_alert_check(account_id=account_id, balance_before=account.credit_balance, balance_after=new_balance)
    return entry, True
