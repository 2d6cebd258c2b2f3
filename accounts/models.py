from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser, PermissionsMixin, UserManager
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from phonenumber_field.modelfields import PhoneNumberField

account_id_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9._-]{2,29}$",
    _("3 to 30 characters: letters, digits, '.', '_' or '-', starting with a letter or digit."),
)


class AccountManager(UserManager):
    def get_by_natural_key(self, username):
        return self.get(account_id__iexact=username)

    def _create_user(self, account_id, email, password, **extra_fields):
        user = self.model(account_id=account_id, email=self.normalize_email(email), **extra_fields)
        user.password = ""
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, account_id, email=None, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(account_id, email, password, **extra_fields)

    def create_superuser(self, account_id, email=None, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        extra_fields.setdefault("email_confirmed_at", timezone.now())
        return self._create_user(account_id, email, password, **extra_fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A customer account (or a staff member). One login per account.

    The account ID is the login name, chosen at sign-up and never changed (ACC-8): no form or
    admin page exposes it for editing. ``credit_balance`` is the cached sum of the account's
    ledger entries; only ``billing.services`` writes it, under a row lock (see DESIGN.md, Money).
    """

    class Kind(models.TextChoices):
        INDIVIDUAL = "individual", _("Individual")
        COMPANY = "company", _("Company")

    account_id = models.CharField(
        _("account ID"),
        max_length=30,
        unique=True,
        validators=[account_id_validator],
        help_text=_("Your login. It can never be changed."),
    )
    email = models.EmailField(_("email"))
    first_name = models.CharField(_("first name"), max_length=150, blank=True)
    last_name = models.CharField(_("last name"), max_length=150, blank=True)
    kind = models.CharField(_("account type"), max_length=12, choices=Kind.choices, blank=True)
    company = models.CharField(_("company"), max_length=200, blank=True)
    vat_number = models.CharField(_("VAT number"), max_length=32, blank=True)
    address_line1 = models.CharField(_("address"), max_length=200, blank=True)
    address_line2 = models.CharField(_("address (line 2)"), max_length=200, blank=True)
    postal_code = models.CharField(_("postal code"), max_length=20, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    country = models.CharField(_("country"), max_length=2, blank=True, default="FR")
    mobile = PhoneNumberField(_("mobile"), blank=True)
    mobile_certified_at = models.DateTimeField(_("mobile certified at"), null=True, blank=True)
    time_zone = models.CharField(_("time zone"), max_length=64, default="Europe/Paris")
    # The site's language until the French catalogue ships: Django's own strings are translated
    # already, ours are not, so "fr" gave pages in two languages.
    language = models.CharField(_("language"), max_length=8, default="en")
    default_region = models.CharField(
        _("default country for national numbers"),
        max_length=2,
        default="FR",
        help_text=_("National numbers such as 06 12 34 56 78 are read as numbers of this country."),
    )
    email_confirmed_at = models.DateTimeField(_("email confirmed at"), null=True, blank=True)
    consent_at = models.DateTimeField(_("anti-spam rules accepted at"), null=True, blank=True)
    credit_balance = models.DecimalField(_("credit balance"), max_digits=14, decimal_places=3, default=Decimal("0"))
    # Credits held for campaigns being sent (BYD-2): part of the balance that nothing else may
    # spend until the campaign's debit is posted. Moved only by billing.services.credits_reserve/release.
    credit_reserved = models.DecimalField(_("reserved credits"), max_digits=14, decimal_places=3, default=Decimal("0"))
    credit_alert_threshold = models.DecimalField(
        _("credit alert threshold"),
        max_digits=14,
        decimal_places=3,
        default=Decimal("0"),
        help_text=_("Email me once when my balance falls to or below this. 0 turns the alert off."),
    )
    credit_alert_armed = models.BooleanField(default=True)
    blocked_at = models.DateTimeField(_("blocked at"), null=True, blank=True)
    is_staff = models.BooleanField(_("staff status"), default=False)
    is_active = models.BooleanField(_("active"), default=True)
    date_joined = models.DateTimeField(_("date joined"), default=timezone.now)

    objects = AccountManager()

    USERNAME_FIELD = "account_id"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["email"]

    class Meta:
        verbose_name = _("account")
        verbose_name_plural = _("accounts")
        constraints = [
            # Login is case-insensitive: "Acme" and "acme" are the same account.
            models.UniqueConstraint(Lower("account_id"), name="accounts_user_account_id_ci_unique"),
            # The ledger can never overdraw an account (DESIGN.md, Money).
            models.CheckConstraint(
                condition=models.Q(credit_balance__gte=0), name="accounts_user_credit_balance_non_negative"
            ),
            # Reserved credits are part of the balance: a debit can never spend them.
            models.CheckConstraint(
                condition=models.Q(credit_reserved__gte=0, credit_balance__gte=models.F("credit_reserved")),
                name="accounts_user_credit_reserved_within_balance",
            ),
            models.CheckConstraint(
                condition=models.Q(credit_alert_threshold__gte=0), name="accounts_user_alert_threshold_non_negative"
            ),
        ]
        indexes = [
            # Password reset and staff search by email.
            models.Index(Lower("email"), name="accounts_user_email_ci_idx"),
        ]

    def __str__(self):
        return self.account_id

    def get_full_name(self):
        return f"{self.first_name} {self.last_name}".strip()

    def get_short_name(self):
        return self.first_name or self.account_id

    @property
    def credits_available(self) -> Decimal:
        """What the account can spend now: the balance minus the credits held for campaigns being sent."""
        return self.credit_balance - self.credit_reserved

    @property
    def is_email_confirmed(self) -> bool:
        return self.email_confirmed_at is not None

    @property
    def is_blocked(self) -> bool:
        return self.blocked_at is not None

    @property
    def is_mobile_certified(self) -> bool:
        return self.mobile_certified_at is not None

    def can_send(self) -> bool:
        return self.is_active and self.is_email_confirmed and not self.is_blocked

    def profile_missing_fields(self) -> list[str]:
        """Labels of what the profile still lacks (ACC-2); empty when complete."""
        missing = []
        if not (self.first_name and self.last_name):
            missing.append(_("your name"))
        if not self.kind or (self.kind == self.Kind.COMPANY and not self.company):
            missing.append(_("company or individual"))
        if not (self.address_line1 and self.postal_code and self.city and self.country):
            missing.append(_("billing address"))
        if not self.is_mobile_certified:
            missing.append(_("a certified mobile number"))
        return missing


class MobileCertification(models.Model):
    """One code sent by SMS to prove a mobile number (ACC-3).

    Only a salted HMAC of the code is stored. A code is usable while ``verified_at`` is null,
    ``expires_at`` is in the future and ``attempts`` is below ``MAX_ATTEMPTS``; a new code for the
    same account supersedes older ones (the newest row is the one checked).
    """

    MAX_ATTEMPTS = 5

    account = models.ForeignKey(User, on_delete=models.CASCADE, related_name="mobile_certifications")
    phone = models.CharField(max_length=20)  # E.164
    code_hash = models.CharField(max_length=64)
    attempts = models.PositiveSmallIntegerField(default=0)
    sent_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    verified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("mobile certification code")
        verbose_name_plural = _("mobile certification codes")
        indexes = [
            # "The account's newest code" (verify step and resend cool-down).
            models.Index(fields=["account", "-sent_at"], name="accounts_mobcert_account_idx"),
        ]

    def __str__(self):
        return f"{self.account_id} {self.phone}"

    def is_usable(self, now=None) -> bool:
        now = now or timezone.now()
        return self.verified_at is None and self.expires_at > now and self.attempts < self.MAX_ATTEMPTS


class CertifiedNumber(models.Model):
    """A mobile number that earned the sign-up bonus. A number earns it once, ever (ACC-3):
    the row stays even if the account later changes its number or is closed."""

    phone = models.CharField(max_length=20)  # E.164
    account = models.ForeignKey(User, on_delete=models.PROTECT, related_name="certified_numbers")
    certified_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("certified number")
        verbose_name_plural = _("certified numbers")
        constraints = [
            # No bonus farming: one number, one certification across all accounts.
            models.UniqueConstraint(fields=["phone"], name="accounts_certified_number_phone_unique"),
            # One bonus per account.
            models.UniqueConstraint(fields=["account"], name="accounts_certified_number_account_unique"),
        ]

    def __str__(self):
        return self.phone


class AccountEvent(models.Model):
    """Audit trail of an account's state changes: who did what, when, and why."""

    class Kind(models.TextChoices):
        SIGNED_UP = "signed_up", _("Signed up")
        CONFIRMATION_RESENT = "confirmation_resent", _("Confirmation email sent again")
        EMAIL_CONFIRMED = "email_confirmed", _("Email confirmed")
        EMAIL_CHANGED = "email_changed", _("Email changed")
        MOBILE_CERTIFIED = "mobile_certified", _("Mobile certified")
        PASSWORD_CHANGED = "password_changed", _("Password changed")
        ACTIVATED = "activated", _("Activated by staff")
        BLOCKED = "blocked", _("Blocked")
        UNBLOCKED = "unblocked", _("Unblocked")

    account = models.ForeignKey(User, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    actor = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("account event")
        verbose_name_plural = _("account events")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    kind__in=[
                        "signed_up",
                        "confirmation_resent",
                        "email_confirmed",
                        "email_changed",
                        "mobile_certified",
                        "password_changed",
                        "activated",
                        "blocked",
                        "unblocked",
                    ]
                ),
                name="accounts_event_kind_valid",
            ),
        ]
        indexes = [
            # The admin's event inline: one account's history, newest first.
            models.Index(fields=["account", "-created_at"], name="accounts_event_account_idx"),
        ]

    def __str__(self):
        return f"{self.account_id} {self.kind}"
