import re
from decimal import Decimal

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.models import MobileCertification, User
from accounts.tokens import email_confirmation_token
from billing.services import ledger_post
from campaigns.gateways import locmem
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

COMPLETE = {
    "first_name": "Jeanne",
    "last_name": "Martin",
    "kind": "company",
    "company": "Acme",
    "address_line1": "1 rue de la Paix",
    "postal_code": "75002",
    "city": "Paris",
    "country": "FR",
}


def _url_in(body: str, marker: str) -> str:
    return re.search(r"https?://\S*" + re.escape(marker) + r"\S*", body).group(0)


def _path(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def _profile_post(user, **changes):
    data = {
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "kind": user.kind or "individual",
        "company": user.company,
        "vat_number": "",
        "address_line1": user.address_line1,
        "address_line2": "",
        "postal_code": user.postal_code,
        "city": user.city,
        "country": user.country,
        "time_zone": user.time_zone,
        "language": user.language,
        "default_region": user.default_region,
    }
    data.update(changes)
    return data


@pytest.mark.parametrize(
    "name",
    ["accounts:profile", "accounts:mobile", "accounts:credit_alert", "accounts:password_change"],
)
def test_account_pages_need_login(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302 and reverse("login") in response["Location"]


# --- Sign-up and confirmation (ACC-1) ----------------------------------------------------------------


def test_signup_then_link_activates_and_reuse_gets_a_clear_page(client, django_capture_on_commit_callbacks):
    data = {
        "account_id": "newco",
        "email": "owner@newco.fr",
        "password1": "a-Good-passw0rd",
        "password2": "a-Good-passw0rd",
        "consent": "on",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("accounts:signup"), data)
    assert response.status_code == 200 and b"owner@newco.fr" in response.content
    user = User.objects.get(account_id="newco")
    assert not user.is_email_confirmed and user.consent_at
    link = _path(_url_in(mail.outbox[0].body, "/accounts/confirm/"))
    response = client.get(link)
    assert response.status_code == 200 and b'data-outcome="confirmed"' in response.content
    user.refresh_from_db()
    assert user.is_email_confirmed
    response = client.get(link)
    assert response.status_code == 400 and b'data-outcome="used"' in response.content


@pytest.mark.parametrize(
    "changes",
    [
        {"consent": ""},
        {"password2": "something-else-1"},
        {"password1": "short", "password2": "short"},
        {"account_id": "x"},
        {"email": "not-an-email"},
    ],
)
def test_bad_signup_shows_errors_and_creates_nothing(client, changes):
    data = {
        "account_id": "newco",
        "email": "owner@newco.fr",
        "password1": "a-Good-passw0rd",
        "password2": "a-Good-passw0rd",
        "consent": "on",
        **changes,
    }
    response = client.post(reverse("accounts:signup"), data)
    assert response.status_code == 200 and b'role="alert"' in response.content
    assert not User.objects.filter(email="owner@newco.fr").exists() and not mail.outbox


def test_signup_with_a_taken_id_in_another_case_is_refused(client, user):
    data = {
        "account_id": user.account_id.upper(),
        "email": "x@newco.fr",
        "password1": "a-Good-passw0rd",
        "password2": "a-Good-passw0rd",
        "consent": "on",
    }
    response = client.post(reverse("accounts:signup"), data)
    assert response.status_code == 200 and User.objects.count() == 1


def test_forged_and_expired_links_get_a_clear_page(client, settings):
    user = UserFactory(email_confirmed_at=None)
    response = client.get(reverse("accounts:confirm_email", kwargs={"token": "forged-token"}))
    assert response.status_code == 400 and b'data-outcome="invalid"' in response.content
    token = email_confirmation_token(user_id=user.pk, previous_email=user.email, email=user.email)
    settings.EMAIL_CONFIRMATION_TIMEOUT = -1
    response = client.get(reverse("accounts:confirm_email", kwargs={"token": token}))
    assert response.status_code == 400 and b'data-outcome="expired"' in response.content
    user.refresh_from_db()
    assert not user.is_email_confirmed


def test_unconfirmed_user_can_log_in_sees_the_prompt_and_can_resend(client, password, other_user):
    user = UserFactory(email_confirmed_at=None, language="en")
    response = client.post(reverse("login"), {"username": user.account_id, "password": password}, follow=True)
    assert response.status_code == 200 and b'data-testid="confirm-email-banner"' in response.content
    response = client.post(reverse("accounts:resend_confirmation"))
    assert response.status_code == 302
    assert [m.to for m in mail.outbox] == [[user.email]]
    # The new link confirms this account, not the other one.
    client.get(_path(_url_in(mail.outbox[0].body, "/accounts/confirm/")))
    user.refresh_from_db()
    other_user.refresh_from_db()
    assert user.is_email_confirmed and other_user.email_confirmed_at is not None


# --- Login, profile prompt, throttling, blocking (ACC-2, ACC-10) -------------------------------------------------


def test_incomplete_profile_prompt_at_each_login_dismissible(client, password):
    user = UserFactory(language="en")
    login = {"username": user.account_id, "password": password}
    response = client.post(reverse("login"), login, follow=True)
    assert b'data-testid="profile-prompt"' in response.content and b"billing address" in response.content
    client.post(reverse("accounts:profile_prompt_dismiss"), {"next": "/"})
    assert b'data-testid="profile-prompt"' not in client.get("/").content
    client.post(reverse("logout"))
    response = client.post(reverse("login"), login, follow=True)
    assert b'data-testid="profile-prompt"' in response.content


def test_no_prompt_when_the_profile_is_complete(client, password):
    user = UserFactory(**COMPLETE, mobile="+33612345678", mobile_certified_at="2026-01-01T00:00Z")
    response = client.post(reverse("login"), {"username": user.account_id, "password": password}, follow=True)
    assert b'data-testid="profile-prompt"' not in response.content


def test_dismiss_refuses_an_external_next(client_logged):
    response = client_logged.post(reverse("accounts:profile_prompt_dismiss"), {"next": "https://evil.example/"})
    assert response["Location"] == reverse("home")


def test_repeated_failures_lock_out_with_a_clear_message(client, user, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": user.account_id, "password": "wrong"})
    response = client.post(reverse("login"), {"username": user.account_id, "password": "correct-horse-battery-9"})
    assert response.status_code == 429
    assert b"Too many failed login attempts" in response.content and b"Try again in 15 minutes" in response.content
    assert "_auth_user_id" not in client.session


def test_blocked_account_cannot_log_in_and_open_sessions_end(client, password, user):
    from accounts.services import account_block

    other = Client()
    other.force_login(user)
    account_block(account=user, actor=None)
    response = client.post(reverse("login"), {"username": user.account_id, "password": password})
    assert response.status_code == 200 and "_auth_user_id" not in client.session
    assert response.context["form"].errors.as_data()["__all__"][0].code == "blocked"
    # Without the password, nothing tells the account is blocked.
    response = client.post(reverse("login"), {"username": user.account_id, "password": "wrong"})
    assert response.context["form"].errors.as_data()["__all__"][0].code == "invalid_login"
    response = other.get(reverse("accounts:profile"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_account_time_zone_and_language_are_active(client, other_user):
    import datetime as dt

    user = UserFactory(time_zone="America/New_York", language="fr")
    client.force_login(user)
    response = client.get(reverse("accounts:profile"))
    assert response.headers["Content-Language"] == "fr"
    assert b'<html lang="fr">' in response.content
    expires = dt.datetime(2099, 1, 1, 12, 0, tzinfo=dt.UTC)
    MobileCertification.objects.create(
        account=user, phone="+33612345678", code_hash="x", expires_at=expires, sent_at=expires
    )
    assert b"07:00" in client.get(reverse("accounts:mobile")).content  # 12:00 UTC in New York
    # Another account's pending code is not shown to this one.
    other = Client()
    other.force_login(other_user)
    assert b"+33612345678" not in other.get(reverse("accounts:mobile")).content


# --- Profile (ACC-7, ACC-8) -----------------------------------------------------------------------------------


def test_profile_shows_the_account_id_read_only(client_logged, user):
    response = client_logged.get(reverse("accounts:profile"))
    assert response.status_code == 200 and user.account_id.encode() in response.content
    assert b'name="account_id"' not in response.content


def test_profile_save_ignores_crafted_account_id_and_other_accounts(client_logged, user, other_user):
    crafted = {"account_id": "stolen", "id": other_user.pk, "pk": other_user.pk, "credit_balance": "500"}
    data = _profile_post(user, **{**COMPLETE, "city": "Lyon"}, **crafted)
    response = client_logged.post(reverse("accounts:profile"), data)
    assert response.status_code == 302
    user.refresh_from_db()
    other_user.refresh_from_db()
    assert user.account_id != "stolen" and user.city == "Lyon" and user.credit_balance == 0
    assert other_user.city == "" and other_user.account_id != "stolen"


def test_email_change_is_confirmed_on_the_new_address(client_logged, user):
    old = user.email
    response = client_logged.post(reverse("accounts:profile"), _profile_post(user, email="fresh@example.org"))
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.email == old and mail.outbox[-1].to == ["fresh@example.org"]
    client_logged.get(_path(_url_in(mail.outbox[-1].body, "/accounts/confirm/")))
    user.refresh_from_db()
    assert user.email == "fresh@example.org"


def test_invalid_profile_changes_nothing(client_logged, user):
    response = client_logged.post(
        reverse("accounts:profile"), _profile_post(user, kind="company", company="", time_zone="Mars/Base")
    )
    assert response.status_code == 200 and b'role="alert"' in response.content
    user.refresh_from_db()
    assert user.kind == "" and user.time_zone == "Europe/Paris"


# --- Passwords (ACC-5, ACC-6) -----------------------------------------------------------------------------------


def test_password_change_logs_other_sessions_out(client_logged, user, password):
    other = Client()
    other.force_login(user)
    url = reverse("accounts:password_change")
    bad = client_logged.post(
        url, {"old_password": "nope", "new_password1": "N3w-pass-phrase", "new_password2": "N3w-pass-phrase"}
    )
    assert bad.status_code == 200
    response = client_logged.post(
        url, {"old_password": password, "new_password1": "N3w-pass-phrase", "new_password2": "N3w-pass-phrase"}
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("N3w-pass-phrase") and not user.check_password(password)
    assert client_logged.get(reverse("accounts:profile")).status_code == 200
    assert other.get(reverse("accounts:profile")).status_code == 302


@pytest.mark.parametrize("by", ["account_id", "email"])
def test_password_reset_by_account_id_or_email(client, user, other_user, by):
    identifier = getattr(user, by).upper()
    response = client.post(reverse("accounts:password_reset"), {"email": identifier})
    assert response.status_code == 302 and response["Location"] == reverse("accounts:password_reset_done")
    [message] = mail.outbox
    # A link, never a password (ACC-5).
    assert message.to == [user.email] and "correct-horse" not in message.body
    link = _path(_url_in(message.body, "/accounts/password-reset/"))
    response = client.get(link, follow=True)
    assert response.status_code == 200 and b"new_password1" in response.content
    form_url = response.redirect_chain[-1][0]
    response = client.post(form_url, {"new_password1": "Br4nd-new-secret", "new_password2": "Br4nd-new-secret"})
    assert response.status_code == 302
    user.refresh_from_db()
    other_user.refresh_from_db()
    assert user.check_password("Br4nd-new-secret") and other_user.check_password("correct-horse-battery-9")
    # Used once: the same link is now refused.
    response = client.get(link, follow=True)
    assert b"new_password1" not in response.content


def test_password_reset_never_reveals_whether_an_account_exists(client, user):
    known = client.post(reverse("accounts:password_reset"), {"email": user.account_id})
    unknown = client.post(reverse("accounts:password_reset"), {"email": "nobody-here"})
    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"])
    assert len(mail.outbox) == 1


# --- Mobile certification (ACC-3, ACC-4) -------------------------------------------------------------------------


def test_mobile_page_certifies_and_credits_twenty(client_logged, user, other_user, settings):
    settings.SUPPORT_PHONE = "+33 1 23 45 67 89"
    page = client_logged.get(reverse("accounts:mobile"))
    assert b"+33 1 23 45 67 89" in page.content
    response = client_logged.post(reverse("accounts:mobile"), {"number": "06 12 34 56 78"})
    assert response.status_code == 302
    code = locmem.outbox[-1].text.split("code is ")[1][:6]
    wrong = "000000" if code != "000000" else "111111"
    response = client_logged.post(reverse("accounts:mobile_verify"), {"code": wrong})
    assert response.status_code == 400 and b"4" in response.content
    # Another account cannot use this account's code.
    other = Client()
    other.force_login(other_user)
    assert other.post(reverse("accounts:mobile_verify"), {"code": code}).status_code == 400
    response = client_logged.post(reverse("accounts:mobile_verify"), {"code": code})
    assert response.status_code == 302
    user.refresh_from_db()
    other_user.refresh_from_db()
    assert user.credit_balance == Decimal("20") and user.is_mobile_certified
    assert other_user.credit_balance == 0 and not other_user.is_mobile_certified
    assert b'data-testid="mobile-certified"' in client_logged.get(reverse("accounts:mobile")).content


def test_mobile_bad_number_and_bad_code_shape_are_reported(client_logged, user):
    response = client_logged.post(reverse("accounts:mobile"), {"number": "12"})
    assert response.status_code == 200 and b'role="alert"' in response.content and not locmem.outbox
    response = client_logged.post(reverse("accounts:mobile_verify"), {"code": "12ab"})
    assert response.status_code == 400 and not MobileCertification.objects.exists()


# --- Credit alert (ACC-9) ----------------------------------------------------------------------------------------


def test_credit_alert_threshold_set_and_removed(client_logged, user, other_user, django_capture_on_commit_callbacks):
    url = reverse("accounts:credit_alert")
    assert client_logged.post(url, {"threshold": "-5"}).status_code == 200
    assert client_logged.post(url, {"threshold": "10"}).status_code == 302
    user.refresh_from_db()
    other_user.refresh_from_db()
    assert user.credit_alert_threshold == Decimal("10") and other_user.credit_alert_threshold == 0
    ledger_post(account_id=user.pk, kind="purchase", amount=Decimal("12"))
    with django_capture_on_commit_callbacks(execute=True):
        ledger_post(account_id=user.pk, kind="send", amount=Decimal("-3"))
    assert len(mail.outbox) == 1
    client_logged.post(url, {"threshold": "0"})
    user.refresh_from_db()
    assert user.credit_alert_threshold == 0


def test_unknown_country_codes_are_refused(client_logged, user):
    response = client_logged.post(reverse("accounts:profile"), _profile_post(user, country="ZZ", default_region="be"))
    assert response.status_code == 200
    response = client_logged.post(reverse("accounts:profile"), _profile_post(user, country="fr", default_region="be"))
    user.refresh_from_db()
    assert response.status_code == 302 and (user.country, user.default_region) == ("FR", "BE")


def test_password_reset_lifts_the_login_lockout(client, user, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": user.account_id.upper(), "password": "wrong"})
    assert client.post(reverse("login"), {"username": user.account_id, "password": "x"}).status_code == 429
    client.post(reverse("accounts:password_reset"), {"email": user.email})
    link = _path(_url_in(mail.outbox[-1].body, "/accounts/password-reset/"))
    form_url = client.get(link, follow=True).redirect_chain[-1][0]
    client.post(form_url, {"new_password1": "Br4nd-new-secret", "new_password2": "Br4nd-new-secret"})
    response = client.post(reverse("login"), {"username": user.account_id, "password": "Br4nd-new-secret"})
    assert response.status_code == 302 and client.session["_auth_user_id"] == str(user.pk)


def test_letter_case_variants_share_one_failure_counter(client, user, settings):
    variants = [user.account_id.upper(), user.account_id.capitalize(), user.account_id.swapcase().title()]
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": variants[attempt % len(variants)], "password": "wrong"})
    assert client.post(reverse("login"), {"username": user.account_id, "password": "x"}).status_code == 429


def test_a_new_account_sees_pages_in_one_language(client, django_user_model):
    """Regression: accounts defaulted to "fr" while only Django's own strings had a French catalogue."""
    user = django_user_model.objects.create_user("onelanguage", "one@example.com", "pw-long-enough-1")
    client.force_login(user)
    page = client.get("/").content.decode()
    assert "Log out" in page and "Déconnexion" not in page
