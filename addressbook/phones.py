"""Phone number normalisation to E.164 with the ISO region used for pricing.

Pure module (``phonenumbers`` only, no Django). Accepted inputs, with the account's default
region (FR in the examples): ``06 12 34 56 78``, ``06.12.34.56.78``, ``0033612345678``,
``33612345678`` (country code without ``+``/``00``), ``+33 6 12 34 56 78``,
``+33 (0)6 12 34 56 78`` and ``612345678`` (Excel dropped the leading 0).

French overseas departments share the French 10-digit national plan but have their own country
codes: a national number starting 0590/0690 (GP), 0594/0694 (GF), 0596/0696/0697 (MQ),
0262/0263/0692/0693 (RE) or 0269/0639 (YT) is re-parsed under that region
(``0696123456`` -> ``+596696123456``); with one of those regions as default, metropolitan
numbers (``0612345678``) resolve to France.

Only numbers passing ``phonenumbers.is_valid_number`` get an ``e164``; the number type then
decides whether the number can receive the message (mobiles for SMS, landlines and VoIP too for
Voice SMS; toll-free, premium-rate, shared-cost... never).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber, PhoneNumberType, ValidationResult
from phonenumbers import PhoneNumberFormat as _Format

__all__ = [
    "SMS_NUMBER_TYPES",
    "VOICE_NUMBER_TYPES",
    "PhoneNormalizer",
    "PhoneResult",
    "normalize_phone",
    "split_recipients",
]

SMS_NUMBER_TYPES: Final[frozenset[int]] = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
"""Number types that can receive an SMS."""

VOICE_NUMBER_TYPES: Final[frozenset[int]] = SMS_NUMBER_TYPES | {PhoneNumberType.FIXED_LINE, PhoneNumberType.VOIP}
"""Number types that can receive a Voice SMS (``allow_landline=True``)."""

_FRENCH_PLAN_REGIONS: Final = frozenset({"FR", "GP", "GF", "MQ", "RE", "YT", "BL", "MF"})

_OVERSEAS_PREFIXES: Final[dict[str, str]] = {
    "590": "GP",
    "690": "GP",
    "594": "GF",
    "694": "GF",
    "596": "MQ",
    "696": "MQ",
    "697": "MQ",
    "262": "RE",
    "263": "RE",
    "692": "RE",
    "693": "RE",
    "269": "YT",
    "639": "YT",
}
"""First three national significant digits of a French-plan number -> region to parse it under."""

_REGION_NAMES: Final[dict[str, str]] = {
    "FR": "France",
    "GP": "Guadeloupe",
    "GF": "French Guiana",
    "MQ": "Martinique",
    "RE": "Réunion",
    "YT": "Mayotte",
    "BL": "Saint Barthélemy",
    "MF": "Saint Martin",
    "PM": "Saint Pierre and Miquelon",
    "NC": "New Caledonia",
    "PF": "French Polynesia",
    "BE": "Belgium",
    "CH": "Switzerland",
    "LU": "Luxembourg",
    "MC": "Monaco",
    "DE": "Germany",
    "ES": "Spain",
    "IT": "Italy",
    "PT": "Portugal",
    "NL": "the Netherlands",
    "GB": "the United Kingdom",
    "IE": "Ireland",
    "US": "the United States",
    "CA": "Canada",
    "MA": "Morocco",
    "DZ": "Algeria",
    "TN": "Tunisia",
}

_PARSE_ERRORS: Final[dict[int, str]] = {
    NumberParseException.INVALID_COUNTRY_CODE: "Unknown country code.",
    NumberParseException.NOT_A_NUMBER: "Not a phone number.",
    NumberParseException.TOO_SHORT_AFTER_IDD: "Too short.",
    NumberParseException.TOO_SHORT_NSN: "Too short.",
    NumberParseException.TOO_LONG: "Too long.",
}

_LENGTH_ERRORS: Final[dict[int, str]] = {
    ValidationResult.INVALID_COUNTRY_CODE: "Unknown country code.",
    ValidationResult.TOO_SHORT: "Too short.",
    ValidationResult.TOO_LONG: "Too long.",
}

_TYPE_ERRORS: Final[dict[int, str]] = {
    PhoneNumberType.FIXED_LINE: "Landline numbers cannot receive SMS.",
    PhoneNumberType.VOIP: "Internet (VoIP) numbers cannot receive SMS.",
    PhoneNumberType.TOLL_FREE: "Toll-free numbers cannot receive messages.",
    PhoneNumberType.PREMIUM_RATE: "Premium-rate numbers cannot receive messages.",
    PhoneNumberType.SHARED_COST: "Shared-cost numbers cannot receive messages.",
}
_OTHER_TYPE_ERROR: Final = "This kind of number cannot receive messages."

_CLEAN_RE: Final = re.compile(r"[\s.\-/()]")


@dataclass(frozen=True, slots=True)
class PhoneResult:
    """Outcome of normalising one raw input.

    ``e164`` is set only for a valid number of an accepted type. A valid number of a refused
    type (a landline for SMS...) keeps its ``region`` and ``number_type`` with an ``error``;
    an unparsable or invalid number has only ``raw`` and a short user-facing English ``error``.
    """

    raw: str
    e164: str | None
    region: str | None
    number_type: int | None
    error: str | None

    @property
    def valid(self) -> bool:
        return self.e164 is not None


def _region_name(region: str | None, country_code: int) -> str:
    if region is None:
        return f"country code +{country_code}"
    return _REGION_NAMES.get(region, region)


def _invalid_reason(number: PhoneNumber) -> str:
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason in _LENGTH_ERRORS:
        return _LENGTH_ERRORS[reason]
    region = phonenumbers.region_code_for_country_code(number.country_code)
    if region == phonenumbers.UNKNOWN_REGION:
        return "Unknown country code."
    return f"Not a valid number for {_region_name(region, number.country_code)}."


def _parse_region(text: str, default_region: str) -> str:
    """Region to parse ``text`` under, applying the French overseas trap to national numbers."""
    if default_region not in _FRENCH_PLAN_REGIONS:
        return default_region
    digits = _CLEAN_RE.sub("", text)
    if not (digits.isascii() and digits.isdigit()):
        return default_region
    if len(digits) == 10 and digits[0] == "0" and digits[1] != "0":
        nsn = digits[1:]
    elif len(digits) == 9 and digits[0] != "0":
        nsn = digits
    else:
        return default_region
    return _OVERSEAS_PREFIXES.get(nsn[:3], "FR")


def _parse(text: str, default_region: str) -> tuple[PhoneNumber | None, str | None]:
    """Parse and validate; return the valid number, or ``None`` and the error to show."""
    region = _parse_region(text, default_region)
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        number, error = None, _PARSE_ERRORS.get(exc.error_type, "Not a phone number.")
    else:
        if phonenumbers.is_valid_number(number):
            return number, None
        error = _invalid_reason(number)
    if not text.startswith("+"):
        try:
            retried = phonenumbers.parse("+" + text, None)
        except NumberParseException:
            pass
        else:
            if phonenumbers.is_valid_number(retried):
                return retried, None
    return None, error


def _normalize(raw: str, default_region: str, allowed_types: frozenset[int]) -> tuple[PhoneResult, PhoneNumber | None]:
    """Normalise ``raw``; also return the parsed number when it is valid (accepted or refused by type)."""
    text = raw.strip()
    if not text:
        return PhoneResult(raw, None, None, None, "Not a phone number."), None
    number, error = _parse(text, default_region)
    if number is None:
        return PhoneResult(raw, None, None, None, error), None
    region = phonenumbers.region_code_for_number(number)
    number_type = phonenumbers.number_type(number)
    if number_type not in allowed_types:
        error = _TYPE_ERRORS.get(number_type, _OTHER_TYPE_ERROR)
        return PhoneResult(raw, None, region, number_type, error), number
    e164 = phonenumbers.format_number(number, _Format.E164)
    return PhoneResult(raw, e164, region, number_type, None), number


def normalize_phone(raw: str, *, default_region: str = "FR", allow_landline: bool = False) -> PhoneResult:
    """Normalise one user-typed number to E.164 with its ISO region (never raises).

    ``default_region`` is the account's country, used for national numbers and for a country
    code typed without ``+``/``00``. By default only numbers that can receive an SMS are
    accepted (:data:`SMS_NUMBER_TYPES`); ``allow_landline=True`` (Voice SMS) also accepts
    :data:`VOICE_NUMBER_TYPES`.
    """
    allowed = VOICE_NUMBER_TYPES if allow_landline else SMS_NUMBER_TYPES
    return _normalize(raw, default_region, allowed)[0]


@dataclass(frozen=True, slots=True)
class _FastBucket:
    """How every number of a bucket maps to E.164, learned from its first fully validated numbers."""

    country_code: str
    """``"+"`` and the country code."""
    offset: int
    """Where the national significant number starts in the compacted input."""
    region: str
    number_type: int
    error: str | None
    """Set when the bucket's type is refused (a landline for SMS...)."""
    pattern: re.Pattern[str]


_LEARNING_SAMPLES: Final = 3
_DISABLED: Final = None

_PRECEDING_TYPES: Final[tuple[str, ...]] = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
)
"""Descriptors ``phonenumbers.number_type`` tests before fixed-line and mobile, in its order."""


def _descriptor_pattern(metadata: phonenumbers.PhoneMetadata, name: str) -> str | None:
    desc = getattr(metadata, name, None)
    return None if desc is None else desc.national_number_pattern


def _verification_pattern(region: str, number_type: int) -> re.Pattern[str] | None:
    """A regex a national significant number must fully match to have ``number_type`` in ``region``.

    It requires the region's general pattern and the type's pattern(s), and excludes every
    pattern ``phonenumbers`` checks before that type, so a match implies the same type.
    """
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None or metadata.same_mobile_and_fixed_line_pattern:
        return None
    if number_type == PhoneNumberType.MOBILE:
        wanted, preceding = ["mobile"], (*_PRECEDING_TYPES, "fixed_line")
    elif number_type == PhoneNumberType.FIXED_LINE:
        wanted, preceding = ["fixed_line"], (*_PRECEDING_TYPES, "mobile")
    elif number_type == PhoneNumberType.FIXED_LINE_OR_MOBILE:
        wanted, preceding = ["fixed_line", "mobile"], _PRECEDING_TYPES
    elif number_type == PhoneNumberType.VOIP:
        wanted, preceding = ["voip"], _PRECEDING_TYPES[:3]
    else:
        return None
    general = _descriptor_pattern(metadata, "general_desc")
    positives = [_descriptor_pattern(metadata, name) for name in wanted]
    if general is None or any(pattern is None for pattern in positives):
        return None
    negatives = [p for p in (_descriptor_pattern(metadata, name) for name in preceding) if p]
    regex = f"(?=(?:{general})$)"
    if negatives:
        regex += f"(?!(?:{'|'.join(negatives)})$)"
    regex += "".join(f"(?=(?:{p})$)" for p in positives[1:]) + f"(?:{positives[0]})"
    return re.compile(regex)


class PhoneNormalizer:
    """Per-job normaliser for bulk work (imports, campaign fan-out); same results as :func:`normalize_phone`.

    Results are cached by exact input (the cache is cleared past :attr:`max_cache` entries).
    Inputs that are plain digit strings once spaces, dots and dashes are removed (optionally
    after ``+``) also go through a prefix-bucket fast path: a bucket is (the compacted input's
    prefix up to 3 digits after ``+``/``00`` and the country code - its first 4 characters
    otherwise -, the compacted length). The first :data:`_LEARNING_SAMPLES` numbers of a bucket are fully validated;
    when they are all accepted with the same region, type and E.164 construction
    (``"+" + country code + trailing national digits``), later numbers of the bucket are built
    by string slicing and checked against the region's metadata patterns for that type (one
    regex), falling back to the full path when the regex does not match. Any disagreement
    while learning disables the bucket's fast path. Not thread-safe: use one per job.
    """

    max_cache: int = 200_000
    max_buckets: int = 200_000

    def __init__(self, *, default_region: str = "FR", allow_landline: bool = False) -> None:
        self.default_region = default_region
        self.allow_landline = allow_landline
        self._allowed = VOICE_NUMBER_TYPES if allow_landline else SMS_NUMBER_TYPES
        self._cache: dict[str, PhoneResult] = {}
        self._buckets: dict[tuple[str, int], list[_FastBucket] | _FastBucket | None] = {}
        self._cc1 = frozenset(str(cc) for cc in phonenumbers.COUNTRY_CODE_TO_REGION_CODE if cc < 10)
        self._cc2 = frozenset(str(cc) for cc in phonenumbers.COUNTRY_CODE_TO_REGION_CODE if 10 <= cc < 100)

    def _prefix_length(self, compact: str) -> int:
        """Length of ``compact``'s bucket prefix: 3 national digits after any ``+``/``00`` and country code."""
        if compact[0] == "+":
            start = 1
        elif compact.startswith("00"):
            start = 2
        else:
            return 4
        if compact[start : start + 1] in self._cc1:
            return start + 4
        if compact[start : start + 2] in self._cc2:
            return start + 5
        return start + 6

    def normalize(self, raw: str) -> PhoneResult:
        """Normalise ``raw`` exactly as :func:`normalize_phone` would with this normaliser's settings."""
        cache = self._cache
        result = cache.get(raw)
        if result is not None:
            return result

        compact = raw.replace(" ", "").replace(".", "").replace("-", "")
        if "(" in compact:
            # "+33 (0)6 12 34 56 78": buckets learn where the national number starts, so the
            # parentheses can go (the "(0)" stays in the bucket's prefix, validated while learning).
            compact = compact.replace("(", "").replace(")", "")
        body = compact[1:] if compact[:1] == "+" else compact
        key = None
        if len(body) >= 6 and body.isascii() and body.isdigit():
            key = (compact[: self._prefix_length(compact)], len(compact))
            bucket = self._buckets.get(key, ())
            if type(bucket) is _FastBucket:
                key = None
                nsn = compact[bucket.offset :]
                if bucket.pattern.fullmatch(nsn):
                    e164 = None if bucket.error else bucket.country_code + nsn
                    result = PhoneResult(raw, e164, bucket.region, bucket.number_type, bucket.error)
            elif bucket is _DISABLED:
                key = None

        if result is None:
            result, number = _normalize(raw, self.default_region, self._allowed)
            if key is not None:
                self._learn(key, compact, result, number)

        if len(cache) >= self.max_cache:
            cache.clear()
        cache[raw] = result
        return result

    def _learn(self, key: tuple[str, int], compact: str, result: PhoneResult, number: PhoneNumber | None) -> None:
        if len(self._buckets) >= self.max_buckets:
            self._buckets.clear()
        samples = self._buckets.setdefault(key, [])
        if not isinstance(samples, list):
            return
        candidate = self._candidate(compact, result, number)
        if candidate is None or (samples and samples[0] != candidate):
            self._buckets[key] = _DISABLED
            return
        samples.append(candidate)
        if len(samples) >= _LEARNING_SAMPLES:
            self._buckets[key] = candidate

    @staticmethod
    def _candidate(compact: str, result: PhoneResult, number: PhoneNumber | None) -> _FastBucket | None:
        if number is None or result.region is None or result.number_type is None:
            return None
        nsn = phonenumbers.national_significant_number(number)
        if not compact.endswith(nsn) or result.e164 not in (None, f"+{number.country_code}{nsn}"):
            return None
        pattern = _verification_pattern(result.region, result.number_type)
        if pattern is None or not pattern.fullmatch(nsn):
            return None
        offset = len(compact) - len(nsn)
        return _FastBucket(f"+{number.country_code}", offset, result.region, result.number_type, result.error, pattern)


_SPLIT_RE: Final = re.compile(r"[,;\n\r\t|]+")
_NUMBER_TOKEN_RE: Final = re.compile(r"\+?[\d.\-/()]*\d[\d.\-/()]*")
_DIGIT_RE: Final = re.compile(r"\d")
_MAX_E164_DIGITS: Final = 15


def _complete_at(first_token: str) -> int:
    """Digit count at which a candidate starting with ``first_token`` holds a whole number."""
    if first_token.startswith(("+", "00")):
        return _MAX_E164_DIGITS
    if first_token.startswith("0"):
        return 10
    return 9


def split_recipients(text: str) -> list[str]:
    """SND-2: split an "Add recipient(s)" entry into candidate numbers, in order (not validated).

    Entries are separated by commas, semicolons, new lines, tabs or ``|``. Inside an entry,
    whitespace also separates numbers, but numbers contain spaces themselves, so the
    whitespace-separated tokens are grouped greedily:

    - a token starting with ``+``, or with ``00`` and at least 4 digits, starts a new number;
    - a token of 9 digits or more starts a new number when the current one has 9 or more;
    - otherwise a token joins the current number while it is shorter than a whole number:
      10 digits for a national number (``0`` then not ``0``), 9 for bare digits
      (``6 12 34 56 78``), 15 (the E.164 maximum) after ``+`` or ``00``;
    - a token that does not look like a number part (letters...) is an entry of its own, so the
      caller reports it as invalid instead of silently dropping it.

    Grouped tokens are joined with one space. Empty entries are dropped.
    """
    recipients: list[str] = []
    for chunk in _SPLIT_RE.split(text):
        current: list[str] = []
        digits = 0
        complete_at = 0
        for token in chunk.split():
            if not _NUMBER_TOKEN_RE.fullmatch(token):
                if current:
                    recipients.append(" ".join(current))
                    current, digits = [], 0
                recipients.append(token)
                continue
            token_digits = len(_DIGIT_RE.findall(token))
            starts_new = (
                token.startswith("+")
                or (token.startswith("00") and token_digits >= 4)
                or (digits >= 9 and token_digits >= 9)
                or digits >= complete_at
            )
            if current and starts_new:
                recipients.append(" ".join(current))
                current, digits = [], 0
            if not current:
                complete_at = _complete_at(token)
            current.append(token)
            digits += token_digits
        if current:
            recipients.append(" ".join(current))
    return recipients
