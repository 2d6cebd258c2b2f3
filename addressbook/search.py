"""Name/company/email search text (ADR-1): pure functions, no database.

Search matches the start of words, like Google Contacts: "dup" finds "Dupont" and "Boulangerie
Dupré", "acme" finds "jean@acme.com"; a query of several words must match all of them, in any
order; case and accents are ignored. Both sides go through one normalisation (Unicode NFKD,
combining marks dropped, ``str.upper``, anything but a letter or a digit separates words), done
in Python so SQLite and PostgreSQL behave identically.

The stored text is the contact's words joined by single spaces, with a leading space
(`` DUPONT JEAN ACME JEAN DUPONT EXAMPLE COM``), so "a word starts with DUP" is
``text LIKE '% DUP%'`` (SQLite); PostgreSQL finds the same rows through a GIN index of every
word's prefixes (``selectors.name_search_ids``, migration 0008)."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_SEPARATORS = re.compile(r"[\W_]+")  # \w is str.isalnum() or "_": this splits on anything but letters and digits


@lru_cache(maxsize=65_536)  # first names and companies repeat across an address book
def _words(value: str) -> tuple[str, ...]:
    if not value.isascii():
        decomposed = unicodedata.normalize("NFKD", value)
        value = "".join(ch for ch in decomposed if not unicodedata.category(ch).startswith("M"))
    return tuple(word for word in _SEPARATORS.split(value.upper()) if word)


def search_text(last_name: str, first_name: str, company: str, email: str) -> str:
    """The stored search text of a contact: its normalised words, each preceded by a space
    (``""`` when it has none)."""
    words = [word for value in (last_name, first_name, company, email) for word in _words(value)]
    return " " + " ".join(words) if words else ""


def query_words(query: str) -> list[str]:
    """The normalised words of a search query, each once, in order (``[]`` when it has none)."""
    return list(dict.fromkeys(_words(query)))
