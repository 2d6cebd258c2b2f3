from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from billing.models import Invoice, InvoiceSequence, LedgerEntry, Order, Transfer
from billing.services import (
    BillingError,
    InsufficientCredits,
    credit_adjust,
    ledger_post,
    order_cancel,
    order_create,
    order_mark_paid,
    transfer_create,
)
from tests.concurrency import race_errors
from tests.factories import OrderFactory, PackFactory, UserFactory


def _balance(user) -> Decimal:
    user.refresh_from_db()
    return user.credit_balance


# --- Ledger invariants ----------------------------------------------------------------------


@pytest.mark.django_db
def test_balance_equals_sum_of_entries_and_ledger_check_passes(user, other_user, capsys):
    ledger_post(account_id=user.pk, kind="bonus", amount=Decimal("20"))
    ledger_post(account_id=user.pk, kind="send", amount=Decimal("-3.3"))
    transfer_create(sender_id=user.pk, recipient_account_id=other_user.account_id, amount=Decimal("1.234"))
    for account in (user, other_user):
        entries = LedgerEntry.objects.filter(account=account).order_by("id")
        assert sum(e.amount for e in entries) == _balance(account)
        assert entries.last().balance_after == _balance(account)
    call_command("ledger_check")
    assert "2 accounts checked: every balance equals its ledger" in capsys.readouterr().out


@pytest.mark.django_db
def test_ledger_check_fails_on_a_mismatch(user, capsys):
    ledger_post(account_id=user.pk, kind="bonus", amount=Decimal("20"))
    type(user).objects.filter(pk=user.pk).update(credit_balance=Decimal("21"))  # corrupted behind the ledger's back
    with pytest.raises(CommandError) as exc:
        call_command("ledger_check")
    assert exc.value.returncode == 1
    assert f"{user.account_id}: balance 21" in capsys.readouterr().err


@pytest.mark.django_db(transaction=True)
def test_concurrent_debits_never_overdraw(require_postgres):
    account = UserFactory()
    ledger_post(account_id=account.pk, kind="bonus", amount=Decimal("10"))
    debits = [lambda: ledger_post(account_id=account.pk, kind="send", amount=Decimal("-6")) for _ in range(4)]
    errors = race_errors(*debits)
    assert len(errors) == 3 and all(isinstance(e, InsufficientCredits) for e in errors)
    assert _balance(account) == Decimal("4")
    call_command("ledger_check")


@pytest.mark.django_db(transaction=True)
def test_concurrent_posts_with_one_idempotency_key_move_credits_once(require_postgres):
    account = UserFactory()
    post = lambda: ledger_post(account_id=account.pk, kind="refund", amount=Decimal("3"), idempotency_key="refund:1")  # noqa: E731
    assert race_errors(*[post] * 5) == []
    assert _balance(account) == Decimal("3") and LedgerEntry.objects.filter(account=account).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_opposite_transfers_neither_overdraw_nor_deadlock(require_postgres):
    alice, bob = UserFactory(), UserFactory()
    ledger_post(account_id=alice.pk, kind="bonus", amount=Decimal("10"))
    ledger_post(account_id=bob.pk, kind="bonus", amount=Decimal("10"))
    jobs = [lambda: transfer_create(sender_id=alice.pk, recipient_account_id=bob.account_id, amount=Decimal("7"))] * 3
    jobs += [lambda: transfer_create(sender_id=bob.pk, recipient_account_id=alice.account_id, amount=Decimal("7"))] * 3
    errors = race_errors(*jobs)
    assert all(isinstance(e, InsufficientCredits) for e in errors), errors
    assert _balance(alice) >= 0 and _balance(bob) >= 0
    assert _balance(alice) + _balance(bob) == Decimal("20")
    assert Transfer.objects.count() == 6 - len(errors)
    call_command("ledger_check")


# --- Orders, payment, invoices -------------------------------------------------------------


@pytest.mark.django_db
def test_order_create_snapshots_the_pack_and_credits_nothing(user):
    pack = PackFactory(credits=100, price_eur=Decimal("8.5"))
    order = order_create(account_id=user.pk, pack_id=pack.pk, method="cheque")
    pack.price_eur = Decimal("9")
    pack.save()
    order.refresh_from_db()
    assert (order.credits, order.price_eur, order.status) == (100, Decimal("8.5"), "pending")
    assert _balance(user) == 0


@pytest.mark.django_db
def test_order_create_refuses_inactive_pack_and_unknown_method(user):
    pack = PackFactory(active=False)
    with pytest.raises(BillingError):
        order_create(account_id=user.pk, pack_id=pack.pk, method="transfer")
    with pytest.raises(BillingError):
        order_create(account_id=user.pk, pack_id=PackFactory().pk, method="bitcoin")
    assert not Order.objects.exists()


@pytest.mark.django_db
def test_mark_paid_credits_once_and_freezes_the_invoice(settings, django_user_model):
    settings.VAT_RATE = Decimal("20")
    buyer = UserFactory(
        company="Boulangerie Martin", address_line1="3 rue Haute", postal_code="13001", city="Marseille"
    )
    staff = UserFactory(is_staff=True)
    order = OrderFactory(account=buyer, credits=1000, price_eur=Decimal("75"))
    paid, first = order_mark_paid(order_id=order.pk, by_user_id=staff.pk)
    again, second = order_mark_paid(order_id=order.pk, by_user_id=staff.pk)
    assert (first, second) == (True, False)
    assert _balance(buyer) == Decimal("1000")
    entry = LedgerEntry.objects.get(account=buyer)
    assert (entry.kind, entry.order_id, entry.idempotency_key) == ("purchase", order.pk, f"order:{order.uuid}")
    assert paid.marked_paid_by == staff and paid.paid_at is not None
    invoice = Invoice.objects.get(order=order)
    assert invoice.number == f"{invoice.year}-000001"
    assert (invoice.amount_excl_vat, invoice.vat_amount, invoice.amount_incl_vat) == (
        Decimal("75.00"),
        Decimal("15.00"),
        Decimal("90.00"),
    )
    assert invoice.buyer_company == "Boulangerie Martin" and "13001 Marseille" in invoice.buyer_address
    buyer.company = "Renamed later"
    buyer.save()
    invoice.refresh_from_db()
    assert invoice.buyer_company == "Boulangerie Martin"


@pytest.mark.django_db
def test_cancelled_order_cannot_be_paid_and_paid_cannot_be_cancelled(user):
    cancelled = order_cancel(order_id=OrderFactory(account=user).pk)
    with pytest.raises(BillingError):
        order_mark_paid(order_id=cancelled.pk)
    paid = OrderFactory(account=user)
    order_mark_paid(order_id=paid.pk)
    with pytest.raises(BillingError):
        order_cancel(order_id=paid.pk)
    assert _balance(user) == Decimal("1000")


@pytest.mark.django_db
def test_stripe_session_must_match_the_order(user):
    order = OrderFactory(account=user, method="card", stripe_session_id="cs_test_a")
    with pytest.raises(BillingError):
        order_mark_paid(order_id=order.pk, stripe_session_id="cs_test_other")
    assert _balance(user) == 0


@pytest.mark.django_db(transaction=True)
def test_invoice_numbers_have_no_gaps_under_concurrent_payments(require_postgres):
    orders = [OrderFactory() for _ in range(8)]
    errors = race_errors(*[lambda o=o: order_mark_paid(order_id=o.pk) for o in orders])
    assert errors == []
    sequences = sorted(Invoice.objects.values_list("sequence", flat=True))
    assert sequences == list(range(1, 9))
    assert InvoiceSequence.objects.get().last == 8
    call_command("ledger_check")


@pytest.mark.django_db(transaction=True)
def test_concurrent_mark_paid_of_one_order_credits_once(require_postgres):
    order = OrderFactory()
    errors = race_errors(*[lambda: order_mark_paid(order_id=order.pk)] * 4)
    assert errors == []
    assert _balance(order.account) == Decimal("1000") and Invoice.objects.count() == 1


# --- Transfers and adjustments --------------------------------------------------------------


@pytest.mark.django_db
def test_transfer_moves_credits_and_both_accounts_see_it(user, other_user):
    ledger_post(account_id=user.pk, kind="bonus", amount=Decimal("20"))
    transfer = transfer_create(
        sender_id=user.pk, recipient_account_id=other_user.account_id.upper(), amount=Decimal("2.125"), reference="May"
    )
    assert (_balance(user), _balance(other_user)) == (Decimal("17.875"), Decimal("2.125"))
    out, into = transfer.entries.order_by("id")
    assert (out.account, out.kind, out.amount) == (user, "transfer_out", Decimal("-2.125"))
    assert (into.account, into.kind, into.amount) == (other_user, "transfer_in", Decimal("2.125"))
    assert "May" in out.reference and other_user.account_id in out.reference and user.account_id in into.reference


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("recipient", "amount", "error"),
    [
        ("nobody-here", "1", BillingError),
        ("SELF", "1", BillingError),
        ("INACTIVE", "1", BillingError),
        ("BLOCKED", "1", BillingError),
        ("OTHER", "0", BillingError),
        ("OTHER", "-1", BillingError),
        ("OTHER", "0.0001", BillingError),
        ("OTHER", "20.001", InsufficientCredits),
    ],
)
def test_transfer_refusals_change_nothing(user, other_user, recipient, amount, error):
    from django.utils import timezone

    ledger_post(account_id=user.pk, kind="bonus", amount=Decimal("20"))
    names = {
        "SELF": user.account_id,
        "OTHER": other_user.account_id,
        "INACTIVE": UserFactory(is_active=False).account_id,
        "BLOCKED": UserFactory(blocked_at=timezone.now()).account_id,
    }
    with pytest.raises(error):
        transfer_create(sender_id=user.pk, recipient_account_id=names.get(recipient, recipient), amount=Decimal(amount))
    assert _balance(user) == Decimal("20") and not Transfer.objects.exists()
    assert LedgerEntry.objects.count() == 1


@pytest.mark.django_db
def test_blocked_sender_cannot_transfer(user, other_user):
    from django.utils import timezone

    ledger_post(account_id=user.pk, kind="bonus", amount=Decimal("20"))
    type(user).objects.filter(pk=user.pk).update(blocked_at=timezone.now())
    with pytest.raises(BillingError):
        transfer_create(sender_id=user.pk, recipient_account_id=other_user.account_id, amount=Decimal("1"))
    assert _balance(other_user) == 0


@pytest.mark.django_db
def test_credit_adjustment_is_a_ledger_entry_with_its_reason(user):
    staff = UserFactory(is_staff=True)
    entry = credit_adjust(account_id=user.pk, amount=Decimal("5"), reason="Goodwill after outage", by_user_id=staff.pk)
    assert (entry.kind, entry.note, entry.created_by) == ("adjustment", "Goodwill after outage", staff)
    with pytest.raises(BillingError):
        credit_adjust(account_id=user.pk, amount=Decimal("5"), reason="  ", by_user_id=staff.pk)
    with pytest.raises(InsufficientCredits):
        credit_adjust(account_id=user.pk, amount=Decimal("-6"), reason="Too much", by_user_id=staff.pk)
    assert _balance(user) == Decimal("5")
