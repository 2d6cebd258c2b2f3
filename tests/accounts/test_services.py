from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from accounts import services
from accounts.models import AccountEvent, CertifiedNumber, MobileCertification, User
from accounts.tokens import ExpiredToken, InvalidToken, email_confirmation_token
from billing.models import LedgerEntry
from billing.services import ledger_post
from campaigns.gateways import locmem
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

MOBILE = "+33612345678"


def _link_token(message) -> str:
    line = next(line for line in message.body.splitlines() if "/accounts/confirm/" in line)
    return line.strip().rstrip("/").rsplit("/", 1)[1]


def _last_code() -> str:
    return locmem.outbox[-1].text.split("code is ")[1][:6]


# --- Sign-up and confirmation (ACC-1) -----------------------------------------------------------


def test_signup_creates_an_unconfirmed_account_and_emails_a_link(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        user = services.account_signup(
            account_id="Acme", email="boss@acme.fr", password="pw-long-enough-1", consent=True
        )
    assert not user.is_email_confirmed and user.consent_at and not user.can_send()
    assert user.check_password("pw-long-enough-1")
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["boss@acme.fr"]
    assert "Acme" in mail.outbox[0].body and "http://" in mail.outbox[0].body
    assert services.sending_refusal_reason(user) is not None


def test_signup_refuses_a_taken_id_in_any_case_and_no_consent(user):
    with pytest.raises(services.AccountError):
        services.account_signup(
            account_id=user.account_id.upper(), email="x@y.fr", password="p-long-1234", consent=True
        )
    with pytest.raises(services.AccountError):
        services.account_signup(account_id="fresh", email="x@y.fr", password="p-long-1234", consent=False)
    assert not User.objects.filter(account_id="fresh").exists()


def test_confirmation_link_activates_once(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        user = services.account_signup(account_id="acme", email="a@acme.fr", password="pw-long-enough-1", consent=True)
    token = _link_token(mail.outbox[0])
    confirmed = services.email_confirm(token=token)
    assert confirmed.pk == user.pk and confirmed.is_email_confirmed and confirmed.can_send()
    assert services.sending_refusal_reason(confirmed) is None
    with pytest.raises(services.AccountError):
        services.email_confirm(token=token)
    assert AccountEvent.objects.filter(account=user, kind="email_confirmed").count() == 1


def test_expired_and_forged_confirmation_links_change_nothing(settings):
    user = UserFactory(email_confirmed_at=None)
    token = email_confirmation_token(user_id=user.pk, previous_email=user.email, email=user.email)
    with pytest.raises(InvalidToken):
        services.email_confirm(token=token + "x")
    forged = email_confirmation_token(user_id=user.pk, previous_email=user.email, email=user.email).replace(":", ";")
    with pytest.raises(InvalidToken):
        services.email_confirm(token=forged)
    settings.EMAIL_CONFIRMATION_TIMEOUT = -1
    with pytest.raises(ExpiredToken):
        services.email_confirm(token=token)
    user.refresh_from_db()
    assert not user.is_email_confirmed


def test_email_change_is_applied_only_from_the_new_address_link(user, django_capture_on_commit_callbacks):
    old = user.email
    assert services.account_profile_update(user=user, data={"email": "new@example.org", "city": "Lyon"})
    user.refresh_from_db()
    assert user.email == old and user.city == "Lyon"
    assert mail.outbox[-1].to == ["new@example.org"]
    with django_capture_on_commit_callbacks(execute=True):
        services.email_confirm(token=_link_token(mail.outbox[-1]))
    user.refresh_from_db()
    assert user.email == "new@example.org" and user.is_email_confirmed
    # The previous address is told about the change.
    assert mail.outbox[-1].to == [old] and "new@example.org" in mail.outbox[-1].body


def test_a_superseded_email_change_link_is_refused(user):
    services.email_change_request(user=user, new_email="first@example.org")
    first = _link_token(mail.outbox[-1])
    services.email_change_request(user=user, new_email="second@example.org")
    services.email_confirm(token=_link_token(mail.outbox[-1]))
    with pytest.raises(services.AccountError):
        services.email_confirm(token=first)
    user.refresh_from_db()
    assert user.email == "second@example.org"


def test_profile_update_ignores_the_account_id_and_the_balance(user):
    original = user.account_id
    services.account_profile_update(
        user=user, data={"account_id": "hijack", "credit_balance": Decimal("999"), "first_name": "Ann"}
    )
    user.refresh_from_db()
    assert (user.account_id, user.credit_balance, user.first_name) == (original, Decimal("0"), "Ann")


def test_blocked_account_cannot_send(user):
    services.account_block(account=user, actor=None)
    user.refresh_from_db()
    assert not user.can_send() and "blocked" in services.sending_refusal_reason(user)


# --- Mobile certification (ACC-3) -----------------------------------------------------------


@pytest.mark.parametrize("raw", ["06 12 34 56 78", "+33 6 12 34 56 78", "0033612345678", "33612345678"])
def test_code_is_sent_by_sms_through_the_gateway_to_the_normalised_number(user, raw):
    certification = services.mobile_certification_start(user=user, raw_number=raw)
    assert certification.phone == MOBILE
    [sms] = locmem.outbox
    assert sms.to == MOBILE and len(_last_code()) == 6
    # Only a hash is stored, never the code.
    assert _last_code() not in certification.code_hash


def test_right_code_certifies_and_credits_the_bonus_through_the_ledger(user, settings):
    services.mobile_certification_start(user=user, raw_number="0612345678")
    services.mobile_certification_verify(user=user, code=_last_code())
    user.refresh_from_db()
    assert user.is_mobile_certified and str(user.mobile) == MOBILE
    assert user.credit_balance == settings.SIGNUP_BONUS_CREDITS == Decimal("20")
    entry = LedgerEntry.objects.get(account=user)
    assert entry.kind == "bonus" and entry.idempotency_key == f"mobile-bonus:{user.pk}"
    with pytest.raises(services.AccountError):
        services.mobile_certification_start(user=user, raw_number="0698765432")


def test_invalid_or_landline_number_is_refused(user):
    for raw in ("12", "04 91 00 00 00", "not a number"):
        with pytest.raises(services.AccountError):
            services.mobile_certification_start(user=user, raw_number=raw)
    assert not locmem.outbox and not MobileCertification.objects.exists()


def test_wrong_codes_count_and_the_code_dies_after_five(user):
    services.mobile_certification_start(user=user, raw_number=MOBILE)
    right = _last_code()
    wrong = "000000" if right != "000000" else "111111"
    for _ in range(MobileCertification.MAX_ATTEMPTS):
        with pytest.raises(services.AccountError):
            services.mobile_certification_verify(user=user, code=wrong)
    assert MobileCertification.objects.get(account=user).attempts == 5
    with pytest.raises(services.AccountError, match="Too many"):
        services.mobile_certification_verify(user=user, code=right)
    user.refresh_from_db()
    assert not user.is_mobile_certified and user.credit_balance == 0


def test_expired_code_is_refused(user):
    services.mobile_certification_start(user=user, raw_number=MOBILE)
    MobileCertification.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(services.AccountError, match="expired"):
        services.mobile_certification_verify(user=user, code=_last_code())


def test_resend_cool_down_then_the_new_code_replaces_the_old(user):
    services.mobile_certification_start(user=user, raw_number=MOBILE)
    old = _last_code()
    with pytest.raises(services.AccountError, match="wait"):
        services.mobile_certification_start(user=user, raw_number=MOBILE)
    assert len(locmem.outbox) == 1
    MobileCertification.objects.update(sent_at=timezone.now() - timedelta(minutes=2))
    services.mobile_certification_start(user=user, raw_number=MOBILE)
    new = _last_code()
    if old != new:
        with pytest.raises(services.AccountError):
            services.mobile_certification_verify(user=user, code=old)
    services.mobile_certification_verify(user=user, code=new)
    user.refresh_from_db()
    assert user.is_mobile_certified


def test_a_number_earns_the_bonus_once_across_accounts(user, other_user):
    services.mobile_certification_start(user=user, raw_number=MOBILE)
    services.mobile_certification_start(user=other_user, raw_number="06 12 34 56 78")
    other_code = _last_code()
    services.mobile_certification_verify(user=user, code=locmem.outbox[0].text.split("code is ")[1][:6])
    # The other account had a code for the same number before the first one certified it.
    with pytest.raises(services.AccountError, match="already been certified"):
        services.mobile_certification_verify(user=other_user, code=other_code)
    with pytest.raises(services.AccountError, match="already been certified"):
        services.mobile_certification_start(user=other_user, raw_number=MOBILE)
    other_user.refresh_from_db()
    assert other_user.credit_balance == 0 and not other_user.is_mobile_certified
    assert CertifiedNumber.objects.get(phone=MOBILE).account_id == user.pk
    assert LedgerEntry.objects.filter(kind="bonus").count() == 1


def test_rejected_sms_voids_the_code(user, settings):
    settings.SMS_GATEWAYS = {
        "default": {"BACKEND": "campaigns.gateways.locmem.Gateway", "OPTIONS": {"REJECT": [MOBILE]}}
    }
    with pytest.raises(services.AccountError, match="could not send"):
        services.mobile_certification_start(user=user, raw_number=MOBILE)
    assert not MobileCertification.objects.get(account=user).is_usable()


# --- Credit alert (ACC-9) -------------------------------------------------------------------


def test_alert_fires_once_across_many_debits_and_rearms(user, django_capture_on_commit_callbacks):
    ledger_post(account_id=user.pk, kind="purchase", amount=Decimal("100"))
    services.credit_alert_set(user=user, threshold=Decimal("50"))
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(30):  # 100 -> 40, crossing 50 once
            ledger_post(account_id=user.pk, kind="send", amount=Decimal("-2"))
    alerts = [m for m in mail.outbox if "balance is low" in m.subject]
    assert len(alerts) == 1 and alerts[0].to == [user.email] and "50" in alerts[0].body
    user.refresh_from_db()
    assert not user.credit_alert_armed
    with django_capture_on_commit_callbacks(execute=True):
        ledger_post(account_id=user.pk, kind="purchase", amount=Decimal("20"))  # 60: above, re-armed
        ledger_post(account_id=user.pk, kind="send", amount=Decimal("-10"))  # 50: at the threshold
        ledger_post(account_id=user.pk, kind="send", amount=Decimal("-1"))
    assert len([m for m in mail.outbox if "balance is low" in m.subject]) == 2


def test_zero_threshold_never_alerts(user, django_capture_on_commit_callbacks):
    ledger_post(account_id=user.pk, kind="purchase", amount=Decimal("10"))
    services.credit_alert_set(user=user, threshold=Decimal("0"))
    with django_capture_on_commit_callbacks(execute=True):
        ledger_post(account_id=user.pk, kind="send", amount=Decimal("-10"))
    assert not mail.outbox


def test_no_alert_email_when_the_debit_rolls_back(user):
    from django.db import transaction

    ledger_post(account_id=user.pk, kind="purchase", amount=Decimal("10"))
    services.credit_alert_set(user=user, threshold=Decimal("5"))
    with pytest.raises(RuntimeError), transaction.atomic():
        ledger_post(account_id=user.pk, kind="send", amount=Decimal("-6"))
        raise RuntimeError
    user.refresh_from_db()
    assert user.credit_alert_armed and not mail.outbox


def test_negative_threshold_refused(user):
    with pytest.raises(services.AccountError):
        services.credit_alert_set(user=user, threshold=Decimal("-1"))


# --- Staff actions ------------------------------------------------------------------------------


def test_block_unblock_activate_are_recorded_with_the_actor(user, other_user):
    staff = UserFactory(is_staff=True)
    pending = UserFactory(email_confirmed_at=None)
    assert services.account_block(account=user, actor=staff, note="spam")
    assert not services.account_block(account=user, actor=staff)
    assert services.account_unblock(account=user, actor=staff)
    assert services.account_activate(account=pending, actor=staff)
    assert not services.account_activate(account=other_user, actor=staff)
    kinds = list(AccountEvent.objects.filter(actor=staff).order_by("id").values_list("account_id", "kind", "note"))
    assert kinds == [(user.pk, "blocked", "spam"), (user.pk, "unblocked", ""), (pending.pk, "activated", "")]
    pending.refresh_from_db()
    assert pending.is_email_confirmed


def test_confirmation_resend_has_a_cool_down(settings):
    user = UserFactory(email_confirmed_at=None)
    services.email_confirmation_resend(user=user)
    with pytest.raises(services.AccountError):
        services.email_confirmation_resend(user=user)
    assert len(mail.outbox) == 1
    AccountEvent.objects.update(created_at=timezone.now() - settings.EMAIL_RESEND_COOLDOWN)
    services.email_confirmation_resend(user=user)
    assert len(mail.outbox) == 2
    with pytest.raises(services.AccountError):
        services.email_confirmation_resend(user=UserFactory())  # already confirmed


def test_codes_per_day_are_capped(user, settings):
    settings.MOBILE_CODES_PER_DAY = 2
    for _ in range(2):
        services.mobile_certification_start(user=user, raw_number=MOBILE)
        MobileCertification.objects.update(sent_at=timezone.now() - timedelta(minutes=5))
    with pytest.raises(services.AccountError, match="today"):
        services.mobile_certification_start(user=user, raw_number=MOBILE)
    assert len(locmem.outbox) == 2
    MobileCertification.objects.update(sent_at=timezone.now() - timedelta(days=1, seconds=1))
    services.mobile_certification_start(user=user, raw_number=MOBILE)
    assert len(locmem.outbox) == 3
