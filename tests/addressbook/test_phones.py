import json
import random
from pathlib import Path

import pytest
from phonenumbers import PhoneNumberType

from addressbook import phones
from addressbook.phones import PhoneNormalizer, PhoneResult, normalize_phone, split_recipients

VECTORS = json.loads(
    (Path(__file__).resolve().parents[3] / "shared" / "vectors" / "sms-and-phones.json").read_text(encoding="utf-8")
)
PHONE_VECTORS = VECTORS["phones"]


@pytest.mark.parametrize("vector", PHONE_VECTORS, ids=[v["input"] for v in PHONE_VECTORS])
def test_vectors(vector):
    result = normalize_phone(vector["input"], default_region=vector["default_region"], allow_landline=True)
    assert result.valid is vector["valid"]
    assert result.raw == vector["input"]
    if vector["valid"]:
        assert (result.e164, result.region, result.error) == (vector["e164"], vector["region"], None)
    else:
        assert result.e164 is None
        assert result.error


@pytest.mark.parametrize("vector", PHONE_VECTORS, ids=[v["input"] for v in PHONE_VECTORS])
def test_vectors_through_normalizer(vector):
    normalizer = PhoneNormalizer(default_region=vector["default_region"], allow_landline=True)
    expected = normalize_phone(vector["input"], default_region=vector["default_region"], allow_landline=True)
    assert normalizer.normalize(vector["input"]) == expected


def test_sms_mode_refuses_landline():
    result = normalize_phone("0142685300")
    assert not result.valid
    assert result.error == "Landline numbers cannot receive SMS."
    assert (result.region, result.number_type) == ("FR", PhoneNumberType.FIXED_LINE)


def test_sms_mode_accepts_fixed_line_or_mobile():
    assert normalize_phone("+1 415 555 2671").number_type == PhoneNumberType.FIXED_LINE_OR_MOBILE


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("0800123456", "Toll-free numbers cannot receive messages."),
        ("0899123456", "Premium-rate numbers cannot receive messages."),
        ("12345", "Too short."),
        ("06 12 34 56", "Too short."),
        ("0612345678901234567", "Too long."),
        ("not a number", "Not a phone number."),
        ("", "Not a phone number."),
        ("   ", "Not a phone number."),
        ("+999 123456", "Unknown country code."),
        ("+33 7 00 00 00 00", "Not a valid number for France."),
    ],
)
def test_errors(raw, error):
    for allow_landline in (False, True):
        result = normalize_phone(raw, allow_landline=allow_landline)
        assert (result.valid, result.e164, result.error) == (False, None, error)


def test_voice_mode_still_refuses_toll_free():
    assert not normalize_phone("0800123456", allow_landline=True).valid


@pytest.mark.parametrize(
    ("raw", "e164", "region"),
    [
        ("0590 87 12 34", "+590590871234", "BL"),
        ("0690123456", "+590690123456", "GP"),
        ("0694123456", "+594694123456", "GF"),
        ("0697123456", "+596697123456", "MQ"),
        ("0693123456", "+262693123456", "RE"),
        ("696123456", "+596696123456", "MQ"),
        ("+447911123456", "+447911123456", "GG"),
    ],
)
def test_overseas_and_regions(raw, e164, region):
    result = normalize_phone(raw, allow_landline=True)
    assert (result.e164, result.region) == (e164, region)


def test_overseas_region_as_default():
    assert normalize_phone("0696123456", default_region="MQ").e164 == "+596696123456"
    assert normalize_phone("0612345678", default_region="MQ").e164 == "+33612345678"
    assert normalize_phone("0692123456", default_region="MQ").e164 == "+262692123456"


def test_result_is_frozen():
    result = normalize_phone("0612345678")
    assert isinstance(result, PhoneResult)
    with pytest.raises(AttributeError):
        result.e164 = "+1"  # type: ignore[misc]


def _formats(national: str, country_code: str) -> list[str]:
    nsn = national[1:]
    pairs = " ".join(national[i : i + 2] for i in range(0, len(national), 2))
    return [
        national,
        pairs,
        ".".join(national[i : i + 2] for i in range(0, len(national), 2)),
        "-".join(national[i : i + 2] for i in range(0, len(national), 2)),
        f"+{country_code}{nsn}",
        f"+{country_code} {nsn[:1]} {nsn[1:]}",
        f"+{country_code} (0){nsn}",
        f"00{country_code}{nsn}",
        f"{country_code}{nsn}",
        nsn,
    ]


def _corpus(size: int, seed: int = 20261125) -> list[str]:
    rng = random.Random(seed)

    def digits(count: int) -> str:
        return "".join(rng.choice("0123456789") for _ in range(count))

    generators = [
        lambda: rng.choice(_formats("06" + digits(8), "33")),
        lambda: rng.choice(_formats("07" + digits(8), "33")),
        lambda: rng.choice(_formats("0" + rng.choice("12345") + digits(8), "33")),
        lambda: rng.choice(
            _formats(
                "0" + rng.choice(["696", "697", "596", "692", "693", "262", "269", "639", "690"]) + digits(6), "33"
            )
        ),
        lambda: (
            rng.choice(["+44 7", "00447", "447", "07"]) + rng.choice(["400", "911", "700", "624", "781"]) + digits(6)
        ),
        lambda: rng.choice(["+32 4", "00324", "324", "04"]) + rng.choice(["70", "75", "80", "90"]) + digits(6),
        lambda: rng.choice(["+596 ", "00596", "596"]) + rng.choice(["696", "697", "596"]) + digits(6),
        lambda: rng.choice(["+262 ", "00262", "262"]) + rng.choice(["692", "693", "639", "262", "269"]) + digits(6),
        lambda: rng.choice(["+1 ", "001", "1"]) + rng.choice(["415", "212", "416", "242", "876"]) + digits(7),
        lambda: "0" + rng.choice("6789") + digits(rng.choice([6, 7, 8, 9, 10])),
        lambda: rng.choice(["+", "00", ""]) + digits(rng.randrange(4, 16)),
        lambda: rng.choice(["not a number", "06 12 AB 56 78", "", "+", "0612345678 ext 12", "06/12/34/56/78"]),
    ]
    weights = [30, 20, 6, 8, 6, 4, 3, 4, 4, 5, 8, 2]
    return [gen() for gen in rng.choices(generators, weights=weights, k=size)]


@pytest.mark.parametrize("allow_landline", [False, True], ids=["sms", "voice"])
def test_normalizer_matches_normalize_phone(allow_landline):
    corpus = _corpus(50_000)
    normalizer = PhoneNormalizer(allow_landline=allow_landline)
    mismatches = [
        (raw, got, expected)
        for raw in corpus
        if (got := normalizer.normalize(raw)) != (expected := normalize_phone(raw, allow_landline=allow_landline))
    ]
    assert mismatches[:5] == []
    assert sum(len(rules) for rules in normalizer._buckets.values()) > 100
    assert sum(result.valid for result in map(normalizer.normalize, corpus)) > len(corpus) // 3


def _tails(rng: random.Random, prefix: str, digits: int, count: int) -> list[str]:
    return [prefix + "".join(rng.choice("0123456789") for _ in range(digits)) for _ in range(count)]


# Buckets (same prefix and length) whose numbers end in different outcomes: a GB/GG/invalid mix
# after +44 7911, Guiana mobiles and invalid numbers after 0694, Mayotte after 0639, invalid French
# numbers after +33 69 (also behind "(0)" and 0033), US numbers (same fixed-line and mobile pattern),
# and +44 1800... where GB's national prefix regex "0|180020" removes digits beyond the bucket's prefix.
_MIXED_FAMILIES = [
    ("+44 7911 ", 6),
    ("0044 7911 ", 6),
    ("0694 ", 6),
    ("06 39 ", 6),
    ("+33 69", 7),
    ("+33 (0)69", 7),
    ("003369", 7),
    ("+1 415 ", 7),
    ("+44 1800 20", 7),
    ("+44 1801 ", 9),
    ("+262 639", 6),
]


@pytest.mark.parametrize("allow_landline", [False, True], ids=["sms", "voice"])
def test_normalizer_fast_path_on_mixed_buckets(allow_landline, monkeypatch):
    """Each bucket above learns one rule per outcome (valid of a region/type, or invalid with its
    error): the full path runs for the learning samples only, and every result stays identical."""
    rng = random.Random(7)
    corpus = [raw for prefix, digits in _MIXED_FAMILIES for raw in _tails(rng, prefix, digits, 400)]
    rng.shuffle(corpus)
    full_path = []
    original = phones._normalize
    monkeypatch.setattr(phones, "_normalize", lambda raw, *args: full_path.append(raw) or original(raw, *args))
    normalizer = PhoneNormalizer(allow_landline=allow_landline)
    got = [normalizer.normalize(raw) for raw in corpus]
    monkeypatch.setattr(phones, "_normalize", original)
    expected = [normalize_phone(raw, allow_landline=allow_landline) for raw in corpus]
    assert [(r, g, e) for r, g, e in zip(corpus, got, expected, strict=True) if g != e][:5] == []
    assert {e.region for e in expected} >= {"GB", "GG", "GF", "YT", "US", None}
    assert len(full_path) < len(corpus) // 8


def test_normalizer_invalid_rule_respects_national_prefix_regex():
    """+44 1800 2... and +44 180020... share a bucket; phonenumbers removes "180020" (GB's national
    prefix regex) from the second only, so an invalid-number rule learned on the first must not
    answer for it ("Too long." against "Not a valid number...")."""
    normalizer = PhoneNormalizer()
    for raw in ["+44 1801 234567890", "+44 1802 234567890", "+44 1803 234567890", "+44 1804 234567890"]:
        assert normalizer.normalize(raw) == normalize_phone(raw)
    assert normalizer.normalize("+44 1804 234567891").error == "Too long."
    raw = "+44 180020 1234567"
    assert normalizer.normalize(raw) == normalize_phone(raw)
    assert normalizer.normalize(raw).error == "Not a valid number for the United Kingdom."


def test_normalizer_cache_is_bounded():
    normalizer = PhoneNormalizer()
    normalizer.max_cache = 100
    for index in range(1_000):
        normalizer.normalize(f"06{index:08d}")
    assert len(normalizer._cache) <= 100


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0612345678 0698765432", ["0612345678", "0698765432"]),
        ("06 12 34 56 78", ["06 12 34 56 78"]),
        ("+33 6 12 34 56 78 +44 7400 123456", ["+33 6 12 34 56 78", "+44 7400 123456"]),
        (
            "06 12 34 56 78, 07.11.22.33.44; +32470123456\n0696123456",
            ["06 12 34 56 78", "07.11.22.33.44", "+32470123456", "0696123456"],
        ),
        ("06 12 34 56 78 07 11 22 33 44", ["06 12 34 56 78", "07 11 22 33 44"]),
        ("06 00 12 34 56", ["06 00 12 34 56"]),
        ("0033 6 12 34 56 78 0044 7400 123456", ["0033 6 12 34 56 78", "0044 7400 123456"]),
        ("+33 (0)6 12 34 56 78", ["+33 (0)6 12 34 56 78"]),
        (",, ;\n\n\t ", []),
        ("0612345678, hello 0698765432", ["0612345678", "hello", "0698765432"]),
        ("12345 0612345678", ["12345 0612345678"]),
        ("0612345678|0698765432\r\n612345678", ["0612345678", "0698765432", "612345678"]),
    ],
)
def test_split_recipients(text, expected):
    assert split_recipients(text) == expected


def test_split_recipients_then_normalize():
    entries = split_recipients("06 12 34 56 78; +33 6 12 34 56 78 0033612345678, 0696 12 34 56")
    e164 = [normalize_phone(entry).e164 for entry in entries]
    assert e164 == ["+33612345678", "+33612345678", "+33612345678", "+596696123456"]
