import pytest

from addressbook.search import query_words, search_text


def test_search_text_is_the_normalised_words_with_a_leading_space():
    assert search_text("Dupont", "Jean", "ACME", "jean.dupont@example.com") == (
        " DUPONT JEAN ACME JEAN DUPONT EXAMPLE COM"
    )


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (("Dupré", "Élodie", "Café Noël", ""), " DUPRE ELODIE CAFE NOEL"),  # accents dropped
        (("Le Guen-Pérez", "Marie_Anne", "", "m.a+sms@lé-mail.fr"), " LE GUEN PEREZ MARIE ANNE M A SMS LE MAIL FR"),
        (("O'Brien", "ﬁona", "Straße 2²", ""), " O BRIEN FIONA STRASSE 22"),  # NFKD (ﬁ, ²), str.upper (ß)
        (("", "", "", ""), ""),
        (("  ", "--", "", "@"), ""),
    ],
)
def test_search_text_normalisation(fields, expected):
    assert search_text(*fields) == expected


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("dup", ["DUP"]),
        ("  élodie   DUPRÉ ", ["ELODIE", "DUPRE"]),
        ("jean@acme.com", ["JEAN", "ACME", "COM"]),
        ("jean jean", ["JEAN"]),
        ("100% d_p", ["100", "D", "P"]),  # LIKE wildcards are separators, never patterns
        ("", []),
        (" - @ ", []),
    ],
)
def test_query_words(query, words):
    assert query_words(query) == words


def test_query_words_are_found_in_the_search_text_of_the_same_values():
    text = search_text("Müller", "Zoé", "Boulangerie Dupré", "zoe@boulangerie-dupre.fr")
    assert all(f" {word}" in text for word in query_words("muller zoe dupre boulangerie-dupre"))
