import pytest
from django.core import signing

from accounts.tokens import (
    EmailConfirmation,
    ExpiredToken,
    InvalidToken,
    email_confirmation_read,
    email_confirmation_token,
)


def test_token_round_trip():
    token = email_confirmation_token(user_id=7, previous_email="a@x.fr", email="b@x.fr")
    assert email_confirmation_read(token) == EmailConfirmation(user_id=7, previous_email="a@x.fr", email="b@x.fr")


def test_altered_token_is_invalid():
    token = email_confirmation_token(user_id=7, previous_email="a@x.fr", email="b@x.fr")
    with pytest.raises(InvalidToken):
        email_confirmation_read(token[:-2] + ("AA" if not token.endswith("AA") else "BB"))


def test_token_signed_for_another_purpose_is_invalid():
    token = signing.dumps({"u": 7, "p": "a@x.fr", "e": "b@x.fr"}, salt="something-else")
    with pytest.raises(InvalidToken):
        email_confirmation_read(token)


def test_old_token_is_expired(settings):
    token = email_confirmation_token(user_id=7, previous_email="a@x.fr", email="b@x.fr")
    settings.EMAIL_CONFIRMATION_TIMEOUT = -1
    with pytest.raises(ExpiredToken):
        email_confirmation_read(token)
