"""Account writes: sign-up, email confirmation, mobile certification, credit alerts, staff actions.

Every function is keyword-only and states its contract. Emails and SMS leave only after the
transaction that justifies them has committed.
"""

import hmac
import secrets
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _

from addressbook.phones import normalize_phone
from billing.services import ledger_post
from campaigns.gateways import GatewayError, OutgoingSMS, get_gateway

from .models import AccountEvent, CertifiedNumber, MobileCertification
from .tokens import InvalidToken, email_confirmation_read, email_confirmation_token

User = get_user_model()


class AccountError(Exception):
    """A user-facing refusal; ``str(error)`` is the message to show. Nothing was changed."""


# --- Emails ---------------------------------------------------------------------------------------


def _send_email(*, to: str, template: str, context: dict, language: str | None = None) -> None:
    """Render ``accounts/email/<template>_subject.txt`` and ``<template>.txt`` and send them now."""
    context = {"site_url": settings.SITE_URL, "support_phone": settings.SUPPORT_PHONE, **context}
    with translation.override(language):
        subject = " ".join(render_to_string(f"accounts/email/{template}_subject.txt", context).split())
        body = render_to_string(f"accounts/email/{template}.txt", context)
    send_mail(subject, body, None, [to])


def _send_email_on_commit(**kwargs) -> None:
    transaction.on_commit(lambda: _send_email(**kwargs))


def _confirmation_url(*, user_id: int, previous_email: str, email: str) -> str:
    token = email_confirmation_token(user_id=user_id, previous_email=previous_email, email=email)
    return settings.SITE_URL + reverse("accounts:confirm_email", kwargs={"token": token})


# --- Sign-up and email confirmation (ACC-1, ACC-7) -----------------------------------------------


def account_signup(*, account_id: str, email: str, password: str, consent: bool, language: str = "") -> User:
    """Create an unconfirmed account and email it a one-time activation link.

    The caller has validated the shapes (form); this refuses an account ID taken in any letter
    case and a sign-up without consent to the anti-spam rules (``AccountError``).
    """
    if not consent:
        raise AccountError(_("You must accept the anti-spam rules to open an account."))
    with transaction.atomic():
        if User.objects.filter(account_id__iexact=account_id).exists():
            raise AccountError(_("This account ID is already taken."))
        extra = {"language": language} if language else {}
        try:
            with transaction.atomic():
                user = User.objects.create_user(account_id, email, password, consent_at=timezone.now(), **extra)
        except IntegrityError:  # a concurrent sign-up took the ID between the check and the insert
            raise AccountError(_("This account ID is already taken.")) from None
        AccountEvent.objects.create(account=user, kind=AccountEvent.Kind.SIGNED_UP)
        _send_email_on_commit(
            to=user.email,
            template="welcome",
            context=_welcome_context(user),
            language=user.language,
        )
    return user


def _welcome_context(user: User) -> dict:
    """The activation email's context: a fresh confirmation link for the account's email."""
    return {
        "account_id": user.account_id,
        "url": _confirmation_url(user_id=user.pk, previous_email=user.email, email=user.email),
        "hours": settings.EMAIL_CONFIRMATION_TIMEOUT // 3600,
    }


def email_confirmation_resend(*, user: User) -> None:
    """Send the activation link again to an account whose email is not confirmed yet, at most once
    per ``EMAIL_RESEND_COOLDOWN`` (so the button cannot be used to flood an inbox)."""
    if user.is_email_confirmed:
        raise AccountError(_("Your email address is already confirmed."))
    last = (
        AccountEvent.objects.filter(
            account=user, kind__in=[AccountEvent.Kind.SIGNED_UP, AccountEvent.Kind.CONFIRMATION_RESENT]
        )
        .values_list("created_at", flat=True)
        .first()
    )
    if last is not None and timezone.now() - last < settings.EMAIL_RESEND_COOLDOWN:
        raise AccountError(
            _("We have just sent you a link. Please check your inbox and spam folder, or retry in a minute.")
        )
    AccountEvent.objects.create(account=user, kind=AccountEvent.Kind.CONFIRMATION_RESENT)
    _send_email(
        to=user.email,
        template="welcome",
        context=_welcome_context(user),
        language=user.language,
    )


def email_change_request(*, user: User, new_email: str) -> None:
    """Email a confirmation link to ``new_email``; the address changes only when it is followed."""
    new_email = User.objects.normalize_email(new_email)
    if new_email.lower() == user.email.lower():
        raise AccountError(_("This is already your email address."))
    _send_email(
        to=new_email,
        template="email_change",
        context={
            "account_id": user.account_id,
            "url": _confirmation_url(user_id=user.pk, previous_email=user.email, email=new_email),
            "hours": settings.EMAIL_CONFIRMATION_TIMEOUT // 3600,
        },
        language=user.language,
    )


def email_confirm(*, token: str) -> User:
    """Apply a confirmation link: activate the account (sign-up) or switch to the new address (the
    previous one is told, after commit).

    Raises ``InvalidToken`` (forged, altered, or for an account that is gone), ``ExpiredToken``,
    or ``AccountError`` when the link was already used or a newer change superseded it.
    """
    confirmation = email_confirmation_read(token)  # raises InvalidToken / ExpiredToken
    with transaction.atomic():
        user = User.objects.select_for_update().filter(pk=confirmation.user_id).first()
        if user is None:
            raise InvalidToken
        if user.email == confirmation.email and user.is_email_confirmed:
            raise AccountError(_("This link has already been used: your address is confirmed. You can log in."))
        if user.email != confirmation.previous_email:
            raise AccountError(_("This link is no longer valid: your email address changed since it was sent."))
        changed = user.email != confirmation.email
        user.email = confirmation.email
        user.email_confirmed_at = timezone.now()
        user.save(update_fields=["email", "email_confirmed_at"])
        AccountEvent.objects.create(
            account=user,
            kind=AccountEvent.Kind.EMAIL_CHANGED if changed else AccountEvent.Kind.EMAIL_CONFIRMED,
            note=f"{confirmation.previous_email} -> {confirmation.email}" if changed else "",
        )
        if changed:
            # Tell the previous address, so a hijacked session changing the email does not go unnoticed.
            _send_email_on_commit(
                to=confirmation.previous_email,
                template="email_changed",
                context={"account_id": user.account_id, "email": user.email},
                language=user.language,
            )
    return user


# --- Profile (ACC-7, ACC-8) ----------------------------------------------------------------------

PROFILE_FIELDS = (
    "first_name",
    "last_name",
    "kind",
    "company",
    "vat_number",
    "address_line1",
    "address_line2",
    "postal_code",
    "city",
    "country",
    "time_zone",
    "language",
    "default_region",
)


def account_profile_update(*, user: User, data: dict) -> bool:
    """Save the editable profile fields of ``data`` (``PROFILE_FIELDS`` only: the account ID, email,
    balance and states can never be set here). An ``email`` different from the current one is not
    saved but re-confirmed on the new address. Returns True when a confirmation email was sent."""
    fields = [name for name in PROFILE_FIELDS if name in data]
    for name in fields:
        setattr(user, name, data[name])
    if fields:
        user.save(update_fields=fields)
    new_email = data.get("email")
    if new_email and new_email.lower() != user.email.lower():
        email_change_request(user=user, new_email=new_email)
        return True
    return False


def password_changed(*, user: User, by_reset: bool = False) -> None:
    """Record a password change (Django's view saved it; the new hash ends the other sessions).

    After a reset by email link, the login lockout of that account ID is lifted too: the
    lockout page sends locked-out users to the reset, which must then let them in.
    """
    AccountEvent.objects.create(
        account=user, kind=AccountEvent.Kind.PASSWORD_CHANGED, note="reset by email link" if by_reset else ""
    )
    if by_reset:
        from axes.models import AccessAttempt  # the database handler (settings: no AXES_HANDLER)

        # Attempts are stored under the lower-cased account ID (accounts.backends.axes_username).
        AccessAttempt.objects.filter(username=user.account_id.lower()).delete()


# --- Sending refusal (SND-1) ------------------------------------------------------------------------


def sending_refusal_reason(user: User) -> str | None:
    """None when ``user`` may send; otherwise the message explaining why not (for the composer)."""
    if user.is_blocked or not user.is_active:
        return _("Your account is blocked: sending is suspended. Please contact support at %(phone)s.") % {
            "phone": settings.SUPPORT_PHONE
        }
    if not user.is_email_confirmed:
        return _(
            "Please confirm your email address before sending: follow the link we emailed to %(email)s, "
            "or ask for a new one from your account page (%(url)s)."
        ) % {"email": user.email, "url": settings.SITE_URL + reverse("accounts:profile")}
    return None


# --- Mobile certification (ACC-3, ACC-4) ---------------------------------------------------------


def _code_hash(*, account_id: int, phone: str, code: str) -> str:
    return salted_hmac("accounts.mobile-code", f"{account_id}:{phone}:{code}").hexdigest()


def mobile_certification_start(*, user: User, raw_number: str) -> MobileCertification:
    """Send a fresh 6-digit code by SMS to the mobile ``raw_number`` (any SND-4 format).

    Refuses (``AccountError``, nothing sent) an account already certified, an invalid or
    non-mobile number, a number already certified by any account, a request within
    ``MOBILE_CODE_RESEND_COOLDOWN`` of the previous one, and more than ``MOBILE_CODES_PER_DAY``
    codes in 24 hours (each code is an SMS the platform pays for). The SMS goes through the default
    gateway after the code's row has committed; if the gateway refuses it, the code is voided.
    """
    result = normalize_phone(raw_number, default_region=user.default_region or settings.DEFAULT_PHONE_REGION)
    if not result.valid:
        raise AccountError(_("This is not a valid mobile number: %(error)s") % {"error": result.error})
    phone = result.e164
    now = timezone.now()
    with transaction.atomic():
        # The account row lock serialises two clicks on "send the code".
        locked = User.objects.select_for_update().only("id", "mobile_certified_at").get(pk=user.pk)
        if locked.is_mobile_certified:
            raise AccountError(_("Your mobile number is already certified."))
        if CertifiedNumber.objects.filter(phone=phone).exists():
            raise AccountError(_("This number has already been certified on an account. Please use another one."))
        recent = MobileCertification.objects.filter(account=user, sent_at__gte=now - timedelta(days=1))
        if recent.count() >= settings.MOBILE_CODES_PER_DAY:
            raise AccountError(
                _("Too many codes requested today. Try again tomorrow, or call support at %(phone)s.")
                % {"phone": settings.SUPPORT_PHONE}
            )
        last = recent.order_by("-sent_at").first()
        if last is not None and now - last.sent_at < settings.MOBILE_CODE_RESEND_COOLDOWN:
            wait = int((settings.MOBILE_CODE_RESEND_COOLDOWN - (now - last.sent_at)).total_seconds()) + 1
            raise AccountError(_("Please wait %(seconds)s seconds before asking for another code.") % {"seconds": wait})
        code = f"{secrets.randbelow(1_000_000):06d}"
        certification = MobileCertification.objects.create(
            account=user,
            phone=phone,
            code_hash=_code_hash(account_id=user.pk, phone=phone, code=code),
            sent_at=now,
            expires_at=now + settings.MOBILE_CODE_TTL,
        )
    text = _("Your SMS Platform verification code is %(code)s. It expires in %(minutes)s minutes.") % {
        "code": code,
        "minutes": int(settings.MOBILE_CODE_TTL.total_seconds() // 60),
    }
    try:
        with get_gateway() as gateway:
            [sent] = gateway.send_messages([OutgoingSMS(ref=f"mobile-cert:{certification.pk}", to=phone, text=text)])
        accepted = sent.accepted
    except GatewayError:
        accepted = False
    if not accepted:
        MobileCertification.objects.filter(pk=certification.pk).update(expires_at=now)
        raise AccountError(
            _("We could not send the SMS to this number. Please check it, or call support at %(phone)s.")
            % {"phone": settings.SUPPORT_PHONE}
        )
    return certification


def mobile_certification_verify(*, user: User, code: str) -> None:
    """Check ``code`` against the account's newest code; on success certify the number and credit
    the sign-up bonus through the ledger, all in one transaction.

    A wrong code counts one attempt (kept even though this raises ``AccountError``); after
    ``MobileCertification.MAX_ATTEMPTS`` or ``MOBILE_CODE_TTL`` the code is dead and a new one
    must be requested. The bonus is granted once per account and once per number, ever.
    """
    code = (code or "").strip()
    now = timezone.now()
    error = None
    with transaction.atomic(durable=True):
        locked = User.objects.select_for_update().get(pk=user.pk)
        if locked.is_mobile_certified:
            raise AccountError(_("Your mobile number is already certified."))
        certification = (
            MobileCertification.objects.select_for_update().filter(account=locked).order_by("-sent_at").first()
        )
        if certification is None or certification.verified_at is not None:
            raise AccountError(_("Ask for a code first."))
        if certification.expires_at <= now:
            raise AccountError(_("This code has expired. Ask for a new one."))
        if certification.attempts >= MobileCertification.MAX_ATTEMPTS:
            raise AccountError(_("Too many wrong codes. Ask for a new one."))
        expected = certification.code_hash
        given = _code_hash(account_id=locked.pk, phone=certification.phone, code=code)
        if not hmac.compare_digest(expected.encode(), given.encode()):
            certification.attempts += 1
            certification.save(update_fields=["attempts"])
            left = MobileCertification.MAX_ATTEMPTS - certification.attempts
            error = (
                _("Wrong code. %(left)s tries left.") % {"left": left}
                if left
                else _("Wrong code. No tries left: ask for a new code.")
            )
        else:
            try:
                with transaction.atomic():
                    CertifiedNumber.objects.create(phone=certification.phone, account=locked, certified_at=now)
            except IntegrityError:
                raise AccountError(
                    _("This number has already been certified on an account. Please use another one.")
                ) from None
            certification.verified_at = now
            certification.save(update_fields=["verified_at"])
            locked.mobile = certification.phone
            locked.mobile_certified_at = now
            locked.save(update_fields=["mobile", "mobile_certified_at"])
            ledger_post(
                account_id=locked.pk,
                kind="bonus",
                amount=settings.SIGNUP_BONUS_CREDITS,
                reference=f"Mobile certification {certification.phone}",
                idempotency_key=f"mobile-bonus:{locked.pk}",
            )
            AccountEvent.objects.create(account=locked, kind=AccountEvent.Kind.MOBILE_CERTIFIED, note=locked.mobile)
    if error:
        raise AccountError(error)


# --- Credit alert (ACC-9) --------------------------------------------------------------------------


def credit_alert_set(*, user: User, threshold: Decimal) -> None:
    """Set the alert threshold (0 turns the alert off) and arm it: the next debit that leaves the
    balance at or below the threshold sends one email."""
    if threshold < 0:
        raise AccountError(_("The threshold cannot be negative."))
    User.objects.filter(pk=user.pk).update(credit_alert_threshold=threshold, credit_alert_armed=True)
    user.credit_alert_threshold, user.credit_alert_armed = threshold, True


def credit_alert_check(*, account_id: int, balance_before: Decimal, balance_after: Decimal) -> None:
    """Called by ``billing.services.ledger_post`` inside its transaction, with the account row locked.

    A debit that leaves an armed alert's balance at or below the threshold disarms it and emails
    the account once (after commit); any movement that leaves the balance above re-arms it. A
    threshold of 0 means no alert.
    """
    account = (
        User.objects.filter(pk=account_id)
        .only("id", "email", "language", "account_id", "credit_alert_threshold", "credit_alert_armed")
        .get()
    )
    threshold = account.credit_alert_threshold
    if threshold <= 0:
        return
    if balance_after > threshold:
        if not account.credit_alert_armed:
            User.objects.filter(pk=account_id).update(credit_alert_armed=True)
        return
    if account.credit_alert_armed and balance_after < balance_before:
        User.objects.filter(pk=account_id).update(credit_alert_armed=False)
        _send_email_on_commit(
            to=account.email,
            template="credit_alert",
            context={"account_id": account.account_id, "balance": balance_after, "threshold": threshold},
            language=account.language,
        )


# --- Staff actions (admin) --------------------------------------------------------------------------


def account_activate(*, account: User, actor: User | None, note: str = "") -> bool:
    """Confirm the account's email on the customer's behalf. Returns False if it already was."""
    with transaction.atomic():
        updated = User.objects.filter(pk=account.pk, email_confirmed_at__isnull=True).update(
            email_confirmed_at=timezone.now(), is_active=True
        )
        if updated:
            AccountEvent.objects.create(account=account, kind=AccountEvent.Kind.ACTIVATED, actor=actor, note=note)
    return bool(updated)


def account_block(*, account: User, actor: User | None, note: str = "") -> bool:
    """Block the account: no login, no sending, its sessions end at their next request and its
    scheduled campaigns stay put (the dispatcher checks ``can_send()``). False if already blocked."""
    with transaction.atomic():
        updated = User.objects.filter(pk=account.pk, blocked_at__isnull=True).update(blocked_at=timezone.now())
        if updated:
            AccountEvent.objects.create(account=account, kind=AccountEvent.Kind.BLOCKED, actor=actor, note=note)
    return bool(updated)


def account_unblock(*, account: User, actor: User | None, note: str = "") -> bool:
    """Lift a block. Returns False if the account was not blocked."""
    with transaction.atomic():
        updated = User.objects.filter(pk=account.pk, blocked_at__isnull=False).update(blocked_at=None)
        if updated:
            AccountEvent.objects.create(account=account, kind=AccountEvent.Kind.UNBLOCKED, actor=actor, note=note)
    return bool(updated)
