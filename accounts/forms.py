"""Shapes of the account forms. Forms validate; services write."""

import functools
import zoneinfo
from decimal import Decimal

import phonenumbers
from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .models import account_id_validator
from .services import PROFILE_FIELDS

User = get_user_model()


class LoginForm(AuthenticationForm):
    """Django's login form; a blocked account with the right password is told it is blocked
    rather than that its password is wrong (only someone who knows the password learns it)."""

    def get_invalid_login_error(self):
        account_id, password = self.cleaned_data.get("username"), self.cleaned_data.get("password")
        blocked = User.objects.filter(account_id__iexact=account_id, blocked_at__isnull=False).first()
        if blocked is not None and password and blocked.check_password(password):
            return forms.ValidationError(
                _("This account is blocked. Please contact support at %(phone)s."),
                code="blocked",
                params={"phone": settings.SUPPORT_PHONE},
            )
        return super().get_invalid_login_error()


class SignupForm(forms.Form):
    account_id = forms.CharField(
        label=_("Account ID"),
        max_length=30,
        validators=[account_id_validator],
        help_text=_("Your login. Choose carefully: it can never be changed."),
        widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    email = forms.EmailField(label=_("Email"), widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password1 = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    password2 = forms.CharField(
        label=_("Password (again)"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )
    consent = forms.BooleanField(
        label=_("I accept the anti-spam rules: I only send to people who agreed to receive my messages."),
        required=True,
    )

    def clean_account_id(self):
        account_id = self.cleaned_data["account_id"]
        if User.objects.filter(account_id__iexact=account_id).exists():
            raise forms.ValidationError(_("This account ID is already taken."))
        return account_id

    def clean(self):
        cleaned = super().clean()
        p1, p2 = cleaned.get("password1"), cleaned.get("password2")
        if p1 and p2 and p1 != p2:
            self.add_error("password2", _("The two passwords differ."))
        elif p1:
            candidate = User(account_id=cleaned.get("account_id", ""), email=cleaned.get("email", ""))
            try:
                password_validation.validate_password(p1, candidate)
            except forms.ValidationError as error:
                self.add_error("password1", error)
        return cleaned


@functools.cache
def _time_zone_choices():
    return [(name, name) for name in sorted(zoneinfo.available_timezones()) if "/" in name or name == "UTC"]


class ProfileForm(forms.ModelForm):
    """Personal information, billing address and preferences. The account ID is not a field, so a
    crafted POST cannot change it (ACC-8). ``email`` is not a model field here: a change is
    re-confirmed on the new address by the service (ACC-7). Pass ``initial={"email": user.email}``."""

    email = forms.EmailField(
        label=_("Email"),
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
        help_text=_("A new address is used once you follow the link we email to it."),
    )
    time_zone = forms.ChoiceField(label=_("Time zone"), choices=_time_zone_choices)
    language = forms.ChoiceField(label=_("Language"), choices=settings.LANGUAGES)

    class Meta:
        model = User
        fields = list(PROFILE_FIELDS)

    SECTIONS = [
        (_("Personal information"), ["first_name", "last_name", "email", "kind", "company", "vat_number"]),
        (_("Billing address"), ["address_line1", "address_line2", "postal_code", "city", "country"]),
        (_("Preferences"), ["time_zone", "language", "default_region"]),
    ]

    def sections(self):
        """(title, bound fields) pairs, for the template's fieldsets."""
        return [(title, [self[name] for name in names]) for title, names in self.SECTIONS]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("kind") == User.Kind.COMPANY and not cleaned.get("company"):
            self.add_error("company", _("Enter the company name."))
        for name in ("country", "default_region"):
            code = (cleaned.get(name) or "").upper()
            if code and code not in phonenumbers.SUPPORTED_REGIONS:
                self.add_error(name, _("Enter a two-letter country code, such as FR or BE."))
            elif code:
                cleaned[name] = code
        return cleaned


class MobileNumberForm(forms.Form):
    number = forms.CharField(
        label=_("Mobile number"),
        max_length=40,
        help_text=_("For example 06 12 34 56 78 or +33 6 12 34 56 78."),
        widget=forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel"}),
    )


class MobileCodeForm(forms.Form):
    code = forms.RegexField(
        label=_("Code received by SMS"),
        regex=r"^\s*\d{6}\s*$",
        error_messages={"invalid": _("The code has 6 digits.")},
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "maxlength": 6}),
    )


class CreditAlertForm(forms.Form):
    threshold = forms.DecimalField(
        label=_("Alert me when my balance falls to or below"),
        min_value=Decimal("0"),
        max_digits=14,
        decimal_places=3,
        help_text=_("In credits. 0 turns the alert off."),
    )


class AccountPasswordResetForm(PasswordResetForm):
    """Reset by account ID or email. Like Django's form, it sends to matching accounts only and
    the page says the same thing either way, so it never reveals whether an account exists."""

    email = forms.CharField(
        label=_("Account ID or email"), max_length=254, widget=forms.TextInput(attrs={"autocomplete": "username"})
    )

    def get_users(self, email):
        identifier = email.strip()
        users = User._default_manager.filter(
            Q(account_id__iexact=identifier) | Q(email__iexact=identifier), is_active=True, blocked_at__isnull=True
        )
        return (user for user in users if user.has_usable_password() and user.email)
