"""Account reads that depend on who asks."""

from django.utils import timezone

from .models import MobileCertification, User


def mobile_certification_pending(*, user: User) -> MobileCertification | None:
    """The account's newest code if it can still be typed, else None."""
    newest = MobileCertification.objects.filter(account=user).order_by("-sent_at").first()
    return newest if newest is not None and newest.is_usable(timezone.now()) else None
