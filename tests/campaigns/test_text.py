import json
import unicodedata
from pathlib import Path

import pytest

from campaigns.text import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    PERSONALISATION_FIELDS,
    FieldSpan,
    analyze,
    apply_euro_rule,
    has_variables,
    is_valid_sender,
    parts_upper_bound,
    personalise,
    split_parts,
    to_gsm7,
)

VECTORS = json.loads(
    (Path(__file__).resolve().parents[3] / "shared" / "vectors" / "sms-and-phones.json").read_text(encoding="utf-8")
)
SMS_VECTORS = VECTORS["sms"]


def assert_parts_consistent(text: str) -> list[str]:
    info = analyze(text)
    parts = split_parts(text)
    assert "".join(parts) == unicodedata.normalize("NFC", text)
    assert len(parts) == info.parts
    per_char = (
        (lambda c: 2 if c in GSM7_EXTENSION else 1)
        if info.encoding == "GSM-7"
        else (lambda c: 2 if ord(c) > 0xFFFF else 1)
    )
    sizes = [sum(per_char(c) for c in part) for part in parts]
    assert sum(sizes) == info.units
    assert all(size <= info.part_capacity for size in sizes)
    if parts:
        assert info.remaining == info.part_capacity - sizes[-1]
    return parts


@pytest.mark.parametrize("vector", SMS_VECTORS, ids=[v["name"] for v in SMS_VECTORS])
def test_vectors(vector):
    info = analyze(vector["text"])
    assert (info.encoding, info.units, info.parts) == (vector["encoding"], vector["units"], vector["parts"])
    assert info.text == unicodedata.normalize("NFC", vector["text"])
    assert_parts_consistent(vector["text"])


def test_alphabet_tables():
    assert len(GSM7_BASIC) == 127
    assert "\x1b" not in GSM7_BASIC
    assert GSM7_EXTENSION == frozenset("\f^{}\\[~]|€")
    assert not GSM7_BASIC & GSM7_EXTENSION
    for char in "çêâîôûëïœ«»…–°’\u00a0":
        assert char not in GSM7_BASIC | GSM7_EXTENSION
    for char in "éèàùÇÉ@£$¥ØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæß¤¡ÄÖÑÜ§¿äöñü\n\r":
        assert char in GSM7_BASIC


def test_empty_text():
    info = analyze("")
    assert (info.parts, info.units, info.part_capacity, info.remaining) == (0, 0, 160, 160)
    assert split_parts("") == []


def test_exactly_160_gsm_chars_is_one_part():
    info = analyze("é" * 160)
    assert (info.encoding, info.parts, info.part_capacity, info.remaining) == ("GSM-7", 1, 160, 0)


def test_159_plus_euro_is_two_parts():
    info = analyze("a" * 159 + "€")
    assert (info.units, info.parts, info.part_capacity) == (161, 2, 153)
    assert split_parts("a" * 159 + "€") == ["a" * 153, "a" * 6 + "€"]


def test_euro_at_part_boundary_makes_three_parts():
    text = "a" * 152 + "€" + "a" * 152
    assert analyze(text).parts == 3
    assert split_parts(text) == ["a" * 152, "€" + "a" * 151, "a"]


def test_emoji_never_straddles_parts():
    text = "a" * 66 + "😀" + "a" * 66
    parts = assert_parts_consistent(text)
    assert parts == ["a" * 66, "😀" + "a" * 65, "a"]
    assert analyze("a" * 69 + "😀").parts == 2


def test_non_gsm_chars_in_first_seen_order():
    info = analyze("L’offre ç’est çà")
    assert info.encoding == "UCS-2"
    assert info.non_gsm_chars == ("’", "ç")
    assert analyze("Bonjour").non_gsm_chars == ()


@pytest.mark.parametrize(
    "text",
    [
        "a" * 500,
        "€" * 200,
        ("ab{" * 120),
        "ç" * 300,
        "😀" * 100,
        "a😀" * 90,
        "🇫🇷" * 40,
        "x" * 153 + "€",
        "x" * 67 + "😀" * 3,
    ],
)
def test_split_parts_round_trips_and_respects_capacity(text):
    assert_parts_consistent(text)


def test_long_basic_text_uses_concatenated_capacity():
    info = analyze("a" * 307)
    assert (info.parts, info.part_capacity, info.remaining) == (3, 153, 152)


def test_euro_rule_replaces_when_it_saves_a_part():
    text = "a" * 159 + "€"
    assert apply_euro_rule(text) == ("a" * 159 + "E", True)


def test_euro_rule_keeps_text_when_nothing_saved():
    assert apply_euro_rule("Prix 5 €") == ("Prix 5 €", False)
    assert apply_euro_rule("a" * 10) == ("a" * 10, False)
    ucs2 = "ç" * 60 + "€" * 20
    assert apply_euro_rule(ucs2) == (ucs2, False)


def test_personalise_replaces_all_fields():
    fields = {"nom": "Dupont", "prenom": "Anne", "email": "anne@example.com", "societe": "ACME"}
    text = "Bonjour $prenom $nom ($email) de $societe."
    assert personalise(text, fields) == "Bonjour Anne Dupont (anne@example.com) de ACME."
    assert PERSONALISATION_FIELDS == ("nom", "prenom", "email", "societe")


def test_personalise_missing_or_none_becomes_empty():
    assert personalise("[$nom][$prenom][$societe]", {"nom": None}) == "[][][]"


def test_personalise_leaves_longer_words_alone():
    assert personalise("$nomade $nom_x $nom2 $nom.", {"nom": "X"}) == "$nomade $nom_x $nom2 X."
    assert has_variables("$nomade") is False
    assert has_variables("Salut $prenom!") is True
    assert has_variables("Prix 5$") is False


def test_personalise_inserts_values_literally():
    fields = {"nom": "$prenom \\1 \\g<0>", "prenom": "Anne"}
    assert personalise("$nom / $prenom", fields) == "$prenom \\1 \\g<0> / Anne"


def test_to_gsm7_makes_french_text_gsm7():
    text = "Leçon : « L’offre » est à 5 € — très sûr… Être\u00a0là, 2°, œuvre, Ça ÎLE"
    converted = to_gsm7(text)
    assert analyze(text).encoding == "UCS-2"
    assert analyze(converted).encoding == "GSM-7"
    assert converted == 'Lecon : " L\'offre " est à 5 € - très sur... Etre là, 2o, oeuvre, Ça ILE'


def test_to_gsm7_keeps_what_it_cannot_map():
    assert to_gsm7("Merci 😀") == "Merci 😀"


@pytest.mark.parametrize(
    "sender", ["ACME", "Dupont&Fils", "Shop-24", "abc", "ABCDEFGHIJK", "36111", "My Shop", "a.b_c"]
)
def test_valid_senders(sender):
    assert is_valid_sender(sender)


@pytest.mark.parametrize(
    "sender",
    ["", "ab", "ABCDEFGHIJKL", "Café", "Shop!", " ACME", "ACME ", "12-34", "Ça va", "A€B", "a\tb", "123456789012"],
)
def test_invalid_senders(sender):
    assert not is_valid_sender(sender)


_PLAIN = sorted(GSM7_BASIC - {"\n", "\r"})
_OTHER = [*"€^{}[]~\\|çêëïœ«»’é", "😀", "🇫🇷", "\u00a0"]
_BOUND_TEXTS = [
    "Bonjour $prenom",
    "Hi $prenom $nom, -20% {promo}",
    "x" * 150 + " $prenom",
    "€" * 70 + "$societe",
    "😀 $email" * 3,
    "$nom",
    "Plain " * 30 + "$prenom $prenom",
    "ç" * 60 + "$nom",
    "No variable at all",
]


def test_parts_upper_bound_is_never_below_a_real_text():
    """Randomised (seeded): for values within their spans, no personalised text has more parts."""
    import random

    rng = random.Random(20261130)
    for _ in range(4000):
        text = rng.choice(_BOUND_TEXTS)
        values, spans = {}, {}
        for name in PERSONALISATION_FIELDS:
            plain = rng.random() < 0.5
            pool = _PLAIN if plain else _PLAIN + _OTHER
            length = rng.randrange(0, 40)
            values[name] = "".join(rng.choice(pool) for _ in range(rng.randrange(0, length + 1)))
            spans[name] = FieldSpan(max_length=length, plain=plain)
        assert max(analyze(personalise(text, values)).parts, 1) <= parts_upper_bound(text, spans), (text, values)


def test_parts_upper_bound_is_exact_for_plain_values_that_fit():
    spans = {"prenom": FieldSpan(max_length=7, plain=True)}
    assert parts_upper_bound("Bonjour $prenom, -20% ce week-end", spans) == 1
    assert parts_upper_bound("a" * 153 + "$prenom", spans) == 1  # at most 160 septets: one part
    assert parts_upper_bound("a" * 299 + "$prenom", spans) == 2  # at most 306 septets: two parts of 153
    assert parts_upper_bound("No variable", {}) == 1
    # A value that may switch the text to UCS-2 is priced as such.
    assert parts_upper_bound("a" * 60 + "$prenom", {"prenom": FieldSpan(max_length=9, plain=False)}) == 2
