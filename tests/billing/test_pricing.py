from decimal import Decimal

import phonenumbers
import pytest

from billing.models import Pack, Rate
from billing.pricing import RateTable, UncoveredDestination, cheapest_pack, quote

pytestmark = pytest.mark.django_db


def test_default_rate_card_covers_every_region_for_both_types(catalogue):
    for kind in ("sms", "voice"):
        regions = set(Rate.objects.filter(kind=kind).values_list("region", flat=True))
        assert regions == set(phonenumbers.SUPPORTED_REGIONS)
    martinique = Rate.objects.get(kind="sms", region="MQ")
    assert (martinique.country_name, martinique.calling_code) == ("Martinique", 596)
    assert Rate.objects.get(kind="sms", region="BL").country_name == "Saint Barthélemy"


@pytest.mark.parametrize(
    ("kind", "region", "expected"),
    [("sms", "FR", "1"), ("sms", "GB", "1.1"), ("voice", "FR", "1.41"), ("sms", "MQ", "1.3"), ("sms", "RE", "1.3")],
)
def test_spec_prices(catalogue, kind, region, expected):
    assert RateTable.load(kind).price(region=region, parts=1) == Decimal(expected)


def test_overseas_departments_are_their_own_destination(catalogue):
    # +596 696... is Martinique for libphonenumber, not France: the MQ rate applies.
    region = phonenumbers.region_code_for_number(phonenumbers.parse("+596696123456"))
    assert region == "MQ"
    table = RateTable.load("sms")
    assert table.price(region=region, parts=1) != table.price(region="FR", parts=1)


def test_uncovered_destination_is_refused(catalogue):
    Rate.objects.filter(kind="sms", region="KP").delete()
    with pytest.raises(UncoveredDestination, match="KP"):
        RateTable.load("sms").price(region="KP", parts=1)
    with pytest.raises(UncoveredDestination):
        quote(kind="sms", text="Hi", recipients_by_region={"FR": 1, "KP": 1})


def test_quote_multi_part_text_costs_per_part(catalogue):
    text = "a" * 152 + "€" + "a" * 152  # the escape pair is not split: 3 parts (FACTS.md)
    result = quote(kind="sms", text=text, recipients_by_region={"FR": 100, "GB": 10, "MQ": 1})
    assert result.parts == 3 and result.encoding == "GSM-7"
    lines = {line.region: line for line in result.lines}
    assert lines["FR"].credits == Decimal("300")
    assert lines["GB"].credits == Decimal("33.0")
    assert lines["MQ"].credits == Decimal("3.9")
    assert result.total_credits == Decimal("336.9")
    assert result.pack.credits == 1000  # the 1,000 pack is the smallest that covers 336.9


def test_quote_unicode_text_and_voice(catalogue):
    result = quote(kind="voice", text="Bonjour ç" * 10, recipients_by_region={"FR": 2})
    assert result.encoding == "UCS-2" and result.parts == 2 and result.non_gsm_chars == ("ç",)
    assert result.total_credits == Decimal("1.41") * 2 * 2


def test_cheapest_pack_is_by_price_and_none_beyond_the_largest(catalogue):
    Pack.objects.create(credits=2000, price_eur=Decimal("70"))  # bigger but cheaper than the 1,000 pack
    assert cheapest_pack(Decimal("900")).credits == 2000
    assert cheapest_pack(Decimal("10000000")) is None
    assert quote(kind="sms", text="x", recipients_by_region={"FR": 10_000_000}).pack is None


def test_pack_unit_price_falls_with_size(catalogue):
    prices = [p.unit_price for p in Pack.objects.order_by("credits")]
    assert prices == sorted(prices, reverse=True) and len(set(prices)) == len(prices)
