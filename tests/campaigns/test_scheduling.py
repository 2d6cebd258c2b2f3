import datetime as dt

import pytest

from campaigns.scheduling import InvalidSendDate, is_commercial_time, next_commercial_time, parse_send_date

UTC = dt.UTC


def utc(*args):
    return dt.datetime(*args, tzinfo=UTC)


def test_typed_date_is_read_in_the_account_time_zone():
    assert parse_send_date("24/12/2026 09:30", time_zone="Europe/Paris") == utc(2026, 12, 24, 8, 30)
    assert parse_send_date("24/12/2026 09:30", time_zone="America/New_York") == utc(2026, 12, 24, 14, 30)
    assert parse_send_date("24/12/2026 9h30", time_zone="Asia/Tokyo") == utc(2026, 12, 24, 0, 30)
    assert parse_send_date("2026-12-24T09:30", time_zone="Europe/Paris") == utc(2026, 12, 24, 8, 30)


def test_dst_change_shifts_the_utc_offset():
    # Paris switches to summer time on 29/03/2026: 01:30 is UTC+1, 03:30 is UTC+2.
    assert parse_send_date("29/03/2026 01:30", time_zone="Europe/Paris") == utc(2026, 3, 29, 0, 30)
    assert parse_send_date("29/03/2026 03:30", time_zone="Europe/Paris") == utc(2026, 3, 29, 1, 30)
    # New York's change is on 08/03/2026.
    assert parse_send_date("09/03/2026 10:00", time_zone="America/New_York") == utc(2026, 3, 9, 14, 0)


def test_ambiguous_autumn_time_is_the_first_occurrence():
    assert parse_send_date("25/10/2026 02:30", time_zone="Europe/Paris") == utc(2026, 10, 25, 0, 30)


@pytest.mark.parametrize(
    "text", ["29/03/2026 02:30", "31/02/2026 10:00", "2026/12/24 10:00", "tomorrow", "", "24/12/2026"]
)
def test_invalid_or_nonexistent_dates_are_refused(text):
    with pytest.raises(InvalidSendDate):
        parse_send_date(text, time_zone="Europe/Paris")


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (utc(2026, 11, 24, 10, 0), utc(2026, 11, 24, 10, 0)),  # Tuesday 11:00 Paris: allowed
        (utc(2026, 11, 24, 19, 30), utc(2026, 11, 25, 7, 0)),  # Tuesday 20:30 Paris -> Wed 08:00
        (utc(2026, 11, 24, 5, 0), utc(2026, 11, 24, 7, 0)),  # Tuesday 06:00 Paris -> 08:00 same day
        (utc(2026, 11, 29, 10, 0), utc(2026, 11, 30, 7, 0)),  # Sunday -> Monday 08:00
        (utc(2026, 12, 24, 21, 0), utc(2026, 12, 26, 7, 0)),  # Christmas Eve night, Christmas -> 26th
        (utc(2026, 4, 4, 19, 0), utc(2026, 4, 7, 6, 0)),  # Sat 21:00 -> Sunday, Easter Monday -> Tue (CEST)
        (utc(2027, 7, 13, 18, 30), utc(2027, 7, 15, 6, 0)),  # 14 July 2027 computed, not hard-coded
    ],
)
def test_marketing_sends_are_deferred_to_the_next_commercial_moment(moment, expected):
    assert next_commercial_time(moment) == expected
    assert is_commercial_time(expected)


def test_commercial_hours_are_on_the_paris_clock():
    assert not is_commercial_time(utc(2026, 11, 24, 19, 0))  # 20:00 Paris
    assert is_commercial_time(utc(2026, 11, 24, 18, 59))
