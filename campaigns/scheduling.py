"""Send dates: the typed ``dd/mm/yyyy hh:mm`` in the account's time zone (SND-11) and the French
commercial-hours rule for marketing messages (SND-18).

Pure functions (no database). French public holidays come from the ``holidays`` package, so no
year is hard-coded. The commercial-hours rule is French law for recipients in France, so it is
evaluated on the Paris clock whatever the account's time zone.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

__all__ = ["COMMERCIAL_TZ", "InvalidSendDate", "is_commercial_time", "next_commercial_time", "parse_send_date"]

DATE_FORMAT = "%d/%m/%Y %H:%M"
COMMERCIAL_TZ = ZoneInfo("Europe/Paris")
OPENING = dt.time(8, 0)
CLOSING = dt.time(20, 0)


class InvalidSendDate(ValueError):
    """The typed date is not ``dd/mm/yyyy hh:mm`` or does not exist on the account's clock."""


def parse_send_date(text: str, *, time_zone: str) -> dt.datetime:
    """Parse ``dd/mm/yyyy hh:mm`` (also ``dd/mm/yyyy hhhmm`` and the HTML ``yyyy-mm-ddThh:mm``)
    as a wall-clock time in ``time_zone``; return it aware in UTC.

    A wall-clock time that does not exist (skipped by a DST change, e.g. 02:30 on the last Sunday
    of March in Paris) raises :class:`InvalidSendDate`; an ambiguous one (repeated in October)
    is the first occurrence, as calendars do.
    """
    cleaned = " ".join(text.strip().replace("h", ":").replace("H", ":").split())
    for fmt in (DATE_FORMAT, "%Y-%m-%dT%H:%M"):
        try:
            naive = dt.datetime.strptime(cleaned, fmt)  # noqa: DTZ007 - made aware just below
            break
        except ValueError:
            continue
    else:
        raise InvalidSendDate(text)
    zone = ZoneInfo(time_zone)
    aware = naive.replace(tzinfo=zone, fold=0)
    # A skipped wall time does not survive the round trip through UTC.
    if aware.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None) != naive:
        raise InvalidSendDate(text)
    return aware.astimezone(dt.UTC)


@lru_cache(maxsize=16)
def _french_holidays(year: int) -> holidays.HolidayBase:
    return holidays.France(years=year)


def is_commercial_time(moment: dt.datetime) -> bool:
    """Whether a marketing SMS may be sent at ``moment`` (aware): 08:00-20:00 Paris time, not on
    a Sunday nor a French public holiday."""
    local = moment.astimezone(COMMERCIAL_TZ)
    if local.weekday() == 6 or local.date() in _french_holidays(local.year):
        return False
    return OPENING <= local.time() < CLOSING


def next_commercial_time(moment: dt.datetime) -> dt.datetime:
    """The first moment at or after ``moment`` (aware) when a marketing SMS may be sent, in UTC.

    Returns ``moment`` itself (in UTC) when it is already allowed.
    """
    if is_commercial_time(moment):
        return moment.astimezone(dt.UTC)
    local = moment.astimezone(COMMERCIAL_TZ)
    day = local.date() if local.time() < OPENING else local.date() + dt.timedelta(days=1)
    while day.weekday() == 6 or day in _french_holidays(day.year):
        day += dt.timedelta(days=1)
    opening = dt.datetime.combine(day, OPENING, tzinfo=COMMERCIAL_TZ)
    return opening.astimezone(dt.UTC)
