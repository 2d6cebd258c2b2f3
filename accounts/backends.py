from django.contrib.auth.backends import ModelBackend


class AccountBackend(ModelBackend):
    """Log in by account ID (case-insensitive). Blocked accounts cannot log in."""

    def user_can_authenticate(self, user):
        return super().user_can_authenticate(user) and not getattr(user, "is_blocked", False)


def axes_username(request, credentials=None) -> str:
    """The login name django-axes counts failures against (``AXES_USERNAME_CALLABLE``).

    Account IDs are case-insensitive, so "Acme" and "ACME" must share one failure counter;
    counting them apart would give a password guesser 5 tries per letter-case variant.
    """
    if credentials:
        username = credentials.get("username")
    else:
        username = getattr(request, "data", request.POST).get("username")
    return (username or "").strip().lower()
