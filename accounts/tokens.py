"""Signed, expiring links for email confirmation (ACC-1, ACC-7).

A link says "user U, whose address was P when we sent this, owns address E". It is signed with
SECRET_KEY (a forged or altered link fails), carries its timestamp (it expires), and is single
use because applying it changes what it checks: once E is the confirmed address, or once the
address is no longer P, the same link is refused.
"""

from dataclasses import dataclass

from django.conf import settings
from django.core import signing

EMAIL_CONFIRMATION_SALT = "accounts.email-confirmation"


class InvalidToken(Exception):
    """The link is forged, altered or not ours."""


class ExpiredToken(Exception):
    """The link is genuine but older than ``settings.EMAIL_CONFIRMATION_TIMEOUT`` seconds."""


@dataclass(frozen=True)
class EmailConfirmation:
    user_id: int
    previous_email: str
    email: str


def email_confirmation_token(*, user_id: int, previous_email: str, email: str) -> str:
    return signing.dumps({"u": user_id, "p": previous_email, "e": email}, salt=EMAIL_CONFIRMATION_SALT, compress=True)


def email_confirmation_read(token: str) -> EmailConfirmation:
    """Decode a confirmation token or raise ``InvalidToken`` / ``ExpiredToken``."""
    try:
        data = signing.loads(token, salt=EMAIL_CONFIRMATION_SALT, max_age=settings.EMAIL_CONFIRMATION_TIMEOUT)
    except signing.SignatureExpired:
        raise ExpiredToken from None
    except signing.BadSignature:
        raise InvalidToken from None
    try:
        return EmailConfirmation(user_id=int(data["u"]), previous_email=str(data["p"]), email=str(data["e"]))
    except (KeyError, TypeError, ValueError):
        raise InvalidToken from None
