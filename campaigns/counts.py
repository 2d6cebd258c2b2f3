"""Squashing the per-campaign message counts (``MessageCount``, SND-16).

Triggers add delta rows to ``campaigns_messagecount`` on every change of ``campaigns_message``
(see the model). Reads sum them, so they stay exact whatever the number of rows; squashing keeps
that number small: each campaign's rows become one row per status (none for a status whose sum
is zero).
"""

from django.db import connection, transaction
from django.db.models import Sum

from .models import MessageCount

SQUASH_LIMIT = 5000  # campaigns per run; the next run takes the rest

# One statement per campaign: the rows this DELETE removed are exactly those summed back, so
# deltas committed meanwhile (this DELETE does not see them) stay for the next squash, and a
# second squash of the same campaign cannot count a row twice (a row is deleted once). A
# campaign another squash has just folded (no unsquashed row left) is left alone.
_SQUASH_POSTGRESQL = """
WITH removed AS (
    DELETE FROM campaigns_messagecount
     WHERE campaign_id = %(campaign)s
       AND EXISTS (SELECT FROM campaigns_messagecount WHERE campaign_id = %(campaign)s AND NOT is_squashed)
    RETURNING status, count
)
INSERT INTO campaigns_messagecount (campaign_id, status, count, is_squashed)
SELECT %(campaign)s, status, sum(count), TRUE FROM removed GROUP BY status HAVING sum(count) <> 0
"""
# pg_try_advisory_xact_lock's first key: which lock family this is (the second is the campaign).
_LOCK_CLASS = 0x6D73_6763  # "msgc"


def message_counts_squash(*, limit: int = SQUASH_LIMIT) -> int:
    """Fold the delta rows of campaigns that have unsquashed ones into one row per status.
    Returns how many campaigns it took (those another squash holds are skipped).

    Safe to run concurrently with writers and with itself: every campaign is squashed in its own
    short transaction; on PostgreSQL under an advisory lock taken with ``try`` (a campaign that
    another squash holds is skipped, never waited for) by one DELETE ... RETURNING feeding the
    INSERT; on SQLite the transaction holds the database's write lock. Counts read at any moment
    are exact before, during and after.
    """
    campaign_ids = list(
        MessageCount.objects.filter(is_squashed=False)
        .order_by("campaign_id")
        .values_list("campaign_id", flat=True)
        .distinct()[:limit]
    )
    squashed = 0
    for campaign_id in campaign_ids:
        with transaction.atomic():
            squashed += _squash_campaign(campaign_id)
    return squashed


def _squash_campaign(campaign_id: int) -> int:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s::int, %s::int)", [_LOCK_CLASS, campaign_id % 2**31])
            if not cursor.fetchone()[0]:
                return 0
            cursor.execute(_SQUASH_POSTGRESQL, {"campaign": campaign_id})
        return 1
    rows = MessageCount.objects.filter(campaign_id=campaign_id)
    sums = list(rows.values("status").annotate(n=Sum("count")).order_by("status").values_list("status", "n"))
    rows.delete()
    MessageCount.objects.bulk_create(
        [MessageCount(campaign_id=campaign_id, status=status, count=n, is_squashed=True) for status, n in sums if n]
    )
    return 1
