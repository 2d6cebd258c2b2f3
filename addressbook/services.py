"""Address book writes and the reads other apps use (DESIGN.md: apps talk through services)."""

from collections.abc import Iterable

from .models import BlacklistEntry

_CHUNK = 5000


def blacklisted_numbers(*, account_id: int, numbers: Iterable[str]) -> set[str]:
    """The subset of ``numbers`` (E.164) on the account's blacklist. One query per 5,000 numbers."""
    numbers = list(dict.fromkeys(numbers))
    found: set[str] = set()
    for start in range(0, len(numbers), _CHUNK):
        chunk = numbers[start : start + _CHUNK]
        found.update(
            BlacklistEntry.objects.filter(account_id=account_id, number__in=chunk).values_list("number", flat=True)
        )
    return found
