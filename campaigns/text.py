"""SMS text rules: GSM 03.38 / UCS-2 encoding, part counting and splitting, personalisation.

Pure functions with no Django or database dependency. Counting follows 3GPP TS 23.038 / 23.040:

- one part holds 160 GSM-7 septets or 70 UTF-16 code units; a concatenated part (6-octet UDH)
  holds 153 septets or 67 units;
- a GSM-7 extension character costs 2 septets (escape + char) and the pair is never split
  across parts; a UTF-16 surrogate pair (emoji...) costs 2 units and is never split either;
- a single character outside the GSM-7 tables switches the whole text to UCS-2;
- text is normalised to NFC before anything is counted or sent.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "PERSONALISATION_FIELDS",
    "FieldSpan",
    "SENDER_RULES",
    "SmsInfo",
    "analyze",
    "apply_euro_rule",
    "has_variables",
    "is_valid_sender",
    "parts_upper_bound",
    "personalise",
    "split_parts",
    "to_gsm7",
    "variables_in",
]

Encoding = Literal["GSM-7", "UCS-2"]

GSM7_BASIC: Final[frozenset[str]] = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"  # 0x1B (escape) is deliberately absent: it is not a usable character
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
"""The 127 usable characters of the GSM 03.38 default alphabet (1 septet each)."""

GSM7_EXTENSION: Final[frozenset[str]] = frozenset("\f^{}\\[~]|€")
"""The GSM 03.38 default extension table (2 septets each: escape + char)."""

_GSM7_ALL: Final[frozenset[str]] = GSM7_BASIC | GSM7_EXTENSION

GSM7_SINGLE: Final = 160
GSM7_MULTI: Final = 153
UCS2_SINGLE: Final = 70
UCS2_MULTI: Final = 67


@dataclass(frozen=True, slots=True)
class SmsInfo:
    """What a text costs on the wire.

    ``units`` are septets for GSM-7 and UTF-16 code units for UCS-2. ``part_capacity`` is the
    capacity of one part for this text (160/70 when it fits in one part or is empty, 153/67 when
    concatenated); ``remaining`` is what is still free in the last part (the single capacity for
    an empty text). ``non_gsm_chars`` lists, in first-seen order, the distinct characters that
    force UCS-2 (empty for GSM-7).
    """

    text: str
    encoding: Encoding
    units: int
    parts: int
    part_capacity: int
    remaining: int
    non_gsm_chars: tuple[str, ...]


def _nfc(text: str) -> str:
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


def _gsm_cost(char: str) -> int:
    return 2 if char in GSM7_EXTENSION else 1


def _ucs2_cost(char: str) -> int:
    return 2 if ord(char) > 0xFFFF else 1


def _fill(costs: list[int], capacity: int) -> tuple[list[int], int]:
    """Fill parts of ``capacity`` units character by character; return part start indexes and last part's use."""
    starts = [0]
    used = 0
    for index, cost in enumerate(costs):
        if used + cost > capacity:
            starts.append(index)
            used = 0
        used += cost
    return starts, used


def _layout(text: str) -> tuple[SmsInfo, list[int]]:
    """Analyse NFC ``text`` and return its info and the start index of each part."""
    if GSM7_BASIC.issuperset(text):
        return _uniform(text, "GSM-7", GSM7_SINGLE, GSM7_MULTI, ())

    if _GSM7_ALL.issuperset(text):
        encoding: Encoding = "GSM-7"
        single, multi = GSM7_SINGLE, GSM7_MULTI
        non_gsm: tuple[str, ...] = ()
        costs = [_gsm_cost(char) for char in text]
    else:
        encoding, single, multi = "UCS-2", UCS2_SINGLE, UCS2_MULTI
        non_gsm = tuple(dict.fromkeys(char for char in text if char not in _GSM7_ALL))
        if text.isascii() or max(text) <= "\uffff":
            return _uniform(text, encoding, single, multi, non_gsm)
        costs = [_ucs2_cost(char) for char in text]

    units = sum(costs)
    if units <= single:
        info = SmsInfo(text, encoding, units, 1, single, single - units, non_gsm)
        return info, [0]
    starts, used = _fill(costs, multi)
    return SmsInfo(text, encoding, units, len(starts), multi, multi - used, non_gsm), starts


def _uniform(
    text: str, encoding: Encoding, single: int, multi: int, non_gsm: tuple[str, ...]
) -> tuple[SmsInfo, list[int]]:
    """Layout of a text whose every character costs one unit, where filling reduces to arithmetic."""
    units = len(text)
    if units == 0:
        return SmsInfo(text, encoding, 0, 0, single, single, non_gsm), []
    if units <= single:
        return SmsInfo(text, encoding, units, 1, single, single - units, non_gsm), [0]
    parts = -(-units // multi)
    used = units - (parts - 1) * multi
    return SmsInfo(text, encoding, units, parts, multi, multi - used, non_gsm), list(range(0, units, multi))


def analyze(text: str) -> SmsInfo:
    """Return the encoding, units and parts of ``text`` after NFC normalisation.

    Parts are filled character by character so that neither a GSM-7 escape pair nor a UTF-16
    surrogate pair straddles two parts (when every character costs one unit, the same filling is
    computed arithmetically). An empty text has 0 parts.
    """
    return _layout(_nfc(text))[0]


def split_parts(text: str) -> list[str]:
    """Split ``text`` (NFC-normalised) into the texts of its parts, following :func:`analyze`.

    ``"".join(split_parts(t)) == unicodedata.normalize("NFC", t)`` and
    ``len(split_parts(t)) == analyze(t).parts``; an empty text gives ``[]``.
    """
    text = _nfc(text)
    _, starts = _layout(text)
    if not starts:
        return []
    ends = [*starts[1:], len(text)]
    return [text[start:end] for start, end in zip(starts, ends, strict=True)]


def apply_euro_rule(text: str) -> tuple[str, bool]:
    """SND-10: replace ``€`` by ``E`` when that saves at least one part.

    Returns ``(replaced_text, True)`` when the NFC text contains ``€`` and the replaced text is
    GSM-7 with fewer parts; otherwise ``(text, False)`` with ``text`` unchanged, so that the
    caller can tell the user when the replacement happened.
    """
    normalised = _nfc(text)
    if "€" not in normalised:
        return text, False
    before = _layout(normalised)[0]
    replaced = normalised.replace("€", "E")
    after = _layout(replaced)[0]
    if after.encoding == "GSM-7" and after.parts < before.parts:
        return replaced, True
    return text, False


PERSONALISATION_FIELDS: Final[tuple[str, ...]] = ("nom", "prenom", "email", "societe")
"""SND-6 variables, written ``$nom``, ``$prenom``, ``$email``, ``$societe`` in a text."""

_VARIABLE_RE: Final = re.compile(r"\$(" + "|".join(PERSONALISATION_FIELDS) + r")\b")


def has_variables(text: str) -> bool:
    """Whether ``text`` contains at least one personalisation variable (``$nomade`` is not one)."""
    return _VARIABLE_RE.search(text) is not None


def variables_in(text: str) -> frozenset[str]:
    """The personalisation variables ``text`` uses (names from :data:`PERSONALISATION_FIELDS`)."""
    return frozenset(_VARIABLE_RE.findall(text))


def personalise(text: str, fields: Mapping[str, str | None]) -> str:
    """Replace ``$nom``, ``$prenom``, ``$email`` and ``$societe`` in one pass.

    ``fields`` is keyed by the names in :data:`PERSONALISATION_FIELDS`; a missing or ``None``
    value becomes an empty string. Values are inserted literally (never re-expanded, backslashes
    kept). A variable must end at a word boundary: ``$nomade`` or ``$nom_x`` are left untouched.
    Variables are case-sensitive.
    """
    if "$" not in text:
        return text
    return _VARIABLE_RE.sub(lambda match: fields.get(match.group(1)) or "", text)


@dataclass(frozen=True, slots=True)
class FieldSpan:
    """What one personalisation variable is replaced with across many recipients: the longest
    value's length in characters, and whether every value holds only GSM-7 basic characters."""

    max_length: int
    plain: bool


def _parts_bound(units: int, single: int, multi: int, pairs_possible: bool) -> int:
    if units <= single:
        return 1
    # A part is closed only when the next character does not fit: a full part holds at least
    # ``multi - 1`` units when 2-unit characters (escape or surrogate pairs) may occur.
    per_part = multi - 1 if pairs_possible else multi
    return -(-units // per_part)


def parts_upper_bound(text: str, spans: Mapping[str, FieldSpan]) -> int:
    """An upper bound of ``max(analyze(personalise(text, values)).parts, 1)`` over every set of
    ``values`` within ``spans`` (keyed like :data:`PERSONALISATION_FIELDS`; a variable without a
    span is replaced by an empty string).

    Used to reserve credits for a personalised campaign before its texts are written. Plain
    values cost one unit per character in either encoding; any other character is counted as
    2 units (a GSM-7 escape pair or a UTF-16 surrogate pair) and may switch the text to UCS-2.
    """
    names = _VARIABLE_RE.findall(text)
    static = _nfc(personalise(text, {}))
    cost = sum((spans[n].max_length if spans[n].plain else 2 * spans[n].max_length) for n in names if n in spans)
    all_plain = all(spans[n].plain for n in names if n in spans)
    bounds = []
    if _GSM7_ALL.issuperset(static):
        septets = sum(_gsm_cost(char) for char in static) + cost
        escapes = not all_plain or not GSM7_BASIC.issuperset(static)
        bounds.append(_parts_bound(septets, GSM7_SINGLE, GSM7_MULTI, escapes))
    if not all_plain or not bounds:
        units = sum(_ucs2_cost(char) for char in static) + cost
        surrogates = not all_plain or any(ord(char) > 0xFFFF for char in static)
        bounds.append(_parts_bound(units, UCS2_SINGLE, UCS2_MULTI, surrogates))
    return max(bounds)


_TRANSLITERATIONS: Final[dict[str, str]] = {
    "ç": "c",
    "œ": "oe",
    "Œ": "OE",
    "«": '"',
    "»": '"',
    "“": '"',
    "”": '"',
    "„": '"',
    "‟": '"',
    "‘": "'",
    "’": "'",
    "‚": "'",
    "‛": "'",
    "′": "'",
    "´": "'",
    "`": "'",
    "…": "...",
    "‐": "-",
    "‑": "-",
    "‒": "-",
    "–": "-",
    "—": "-",
    "―": "-",
    "−": "-",
    "•": "-",
    "·": ".",
    "°": "o",
    "×": "x",
    "\t": " ",
    "\u00a0": " ",
    "\u2007": " ",
    "\u2009": " ",
    "\u200a": " ",
    "\u202f": " ",
    "\u200b": "",
    "\ufeff": "",
}


def _build_gsm7_table() -> dict[int, str]:
    table = {ord(char): value for char, value in _TRANSLITERATIONS.items()}
    for code in range(0xC0, 0x250):
        char = chr(code)
        if char in _GSM7_ALL or code in table:
            continue
        base = unicodedata.normalize("NFD", char)[0]
        if base != char and base in GSM7_BASIC:
            table[code] = base
    return table


_GSM7_TABLE: Final[dict[int, str]] = _build_gsm7_table()


def to_gsm7(text: str) -> str:
    """BYD-1: transliterate common non-GSM characters of NFC ``text`` to GSM-7 equivalents.

    Accented letters outside the alphabet lose their accent (``ç`` -> ``c``, ``ê`` -> ``e``,
    ``È`` -> ``E``), typographic quotes, dashes, ellipsis and special spaces become their ASCII
    forms, ``œ`` -> ``oe``, ``°`` -> ``o``. Characters already in GSM-7 and characters with no
    mapping (emoji, other scripts) are left unchanged.
    """
    return _nfc(text).translate(_GSM7_TABLE)


SENDER_RULES: Final = (
    "A custom sender has 3 to 11 characters: unaccented letters, digits, spaces and . - _ &, "
    "with at least one letter unless it is all digits, and no leading or trailing space."
)
"""User-facing statement of the rules :func:`is_valid_sender` enforces (SND-7)."""

_SENDER_RE: Final = re.compile(r"[A-Za-z0-9 ._&-]{3,11}")


def is_valid_sender(sender: str) -> bool:
    """Whether ``sender`` is an acceptable custom alphanumeric sender, as stated in :data:`SENDER_RULES`.

    Letters are restricted to unaccented ASCII (a subset of GSM-7 basic) because carriers
    mangle or reject accented alphanumeric originators.
    """
    if not _SENDER_RE.fullmatch(sender) or sender != sender.strip():
        return False
    return sender.isdigit() or any(char.isalpha() for char in sender)
