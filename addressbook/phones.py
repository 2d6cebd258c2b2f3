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
from functools import cache
from typing import Final, NamedTuple

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


class PhoneResult(NamedTuple):
    """Outcome of normalising one raw input (an immutable named tuple: cheap to build in bulk).

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


_new_result = tuple.__new__
"""``_new_result(PhoneResult, (raw, e164, region, number_type, error))``: the fast path's constructor."""


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


_LEARNING_SAMPLES: Final = 3
"""Slow-path numbers of a bucket that must agree on a rule before the rule is used."""
_MAX_RULES: Final = 6
_MAX_SAMPLES: Final = 64
"""Slow-path numbers a bucket learns from; past that, the bucket keeps its rules and stops learning."""

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

_DIGITS_RE: Final = re.compile(r"\d+")


def _descriptor_pattern(metadata: phonenumbers.PhoneMetadata, name: str) -> str | None:
    desc = getattr(metadata, name, None)
    return (desc.national_number_pattern or None) if desc is not None else None


@cache
def _any_type_pattern(region: str) -> str:
    """A regex a national significant number fully matches whenever ``phonenumbers`` gives it a
    type (valid number) in ``region``. It ignores possible lengths, so it may also match numbers
    of no type: use it only to exclude."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    general = metadata and _descriptor_pattern(metadata, "general_desc")
    types = [p for p in (_descriptor_pattern(metadata, n) for n in (*_PRECEDING_TYPES, "fixed_line", "mobile")) if p]
    if not general or not types:
        return "(?!)"
    return f"(?=(?:{general})$)(?:{'|'.join(types)})$"


@cache
def _invalid_pattern(country_code: int) -> str | None:
    """A regex a national significant number fully matches only when it is valid in none of the
    regions sharing ``country_code`` (so ``is_valid_number`` is false whatever region it gets)."""
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code)
    if not regions or any(phonenumbers.PhoneMetadata.metadata_for_region(r) is None for r in regions):
        return None
    return f"(?!{'|'.join(_any_type_pattern(r) for r in regions)})\\d+"


@cache
def _region_type_pattern(region: str, number_type: int) -> str | None:
    """A regex a national significant number must fully match to be given ``region`` by
    ``region_code_for_number`` and ``number_type`` by ``number_type``.

    It requires the region's general pattern and the type's pattern(s), excludes every pattern
    ``phonenumbers`` checks before that type, and, when several regions share the country code,
    excludes the numbers an earlier region of the list claims (by leading digits or by a valid
    type) and requires the region's own leading digits.
    """
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None:
        return None
    same = metadata.same_mobile_and_fixed_line_pattern
    if number_type == PhoneNumberType.MOBILE and not same:
        wanted, preceding = ["mobile"], (*_PRECEDING_TYPES, "fixed_line")
    elif number_type == PhoneNumberType.FIXED_LINE and not same:
        wanted, preceding = ["fixed_line"], (*_PRECEDING_TYPES, "mobile")
    elif number_type == PhoneNumberType.FIXED_LINE_OR_MOBILE:
        wanted, preceding = (["fixed_line"] if same else ["fixed_line", "mobile"]), _PRECEDING_TYPES
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
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(metadata.country_code, ())
    if region not in regions:
        return None
    if len(regions) > 1:
        # region_code_for_number tries the regions in order: the first whose leading digits
        # match, or (without leading digits) that gives the number a type, wins.
        claims = ""
        for earlier in regions[: regions.index(region)]:
            earlier_metadata = phonenumbers.PhoneMetadata.metadata_for_region(earlier)
            if earlier_metadata is None:
                continue
            if earlier_metadata.leading_digits is not None:
                claims += f"(?!(?:{earlier_metadata.leading_digits}))"
            else:
                claims += f"(?!{_any_type_pattern(earlier)})"
        if metadata.leading_digits is not None:
            claims += f"(?=(?:{metadata.leading_digits}))"
        regex = claims + regex
    return regex


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _main_metadata(country_code: int) -> phonenumbers.PhoneMetadata | None:
    return phonenumbers.PhoneMetadata.metadata_for_region(phonenumbers.region_code_for_country_code(country_code))


def _checks_pass(checks: tuple, raw: str, compact: str) -> bool:
    """The runtime checks of a rule (see ``PhoneNormalizer._shape``)."""
    for kind, start, pattern, expected in checks:
        if kind == "head":
            if not compact.startswith(expected):
                return False
        elif kind == "plus":
            if raw[:1] != "+":
                return False
        else:  # "prefix": a national or international prefix regex must end where it did while learning
            match = pattern(compact[start:])
            if (match.end() if match is not None else -1) != expected:
                return False
    return True


class PhoneNormalizer:
    """Per-job normaliser for bulk work (imports, campaign fan-out); same results as :func:`normalize_phone`.

    Inputs that are plain digit strings once spaces, dots, dashes and parentheses are removed
    (optionally after ``+``) go through a prefix-bucket fast path: a bucket is (the compacted
    input's prefix up to 3 digits after ``+``/``00`` and the country code - its first 4
    characters otherwise -, the compacted length). Each bucket holds *rules* learned from the
    numbers that went through the full path: a rule says how ``phonenumbers`` cut the input
    (country code, national prefix, national significant number = the input's last digits) and
    what it concluded - accepted or refused with a region and a type, or invalid with an error.
    A rule is used once :data:`_LEARNING_SAMPLES` numbers of the bucket produced it. A later
    number of the bucket takes a rule's result only when its last digits fully match the
    rule's regex, built from the metadata so that a match implies the same conclusion:

    - valid numbers: the region's general and type patterns, minus the types ``phonenumbers``
      tests first and the numbers another region of the same country code claims first;
    - invalid numbers: valid in no region of the country code;

    plus, when the metadata's national or international prefix is a regex rather than fixed
    digits, that it cuts the number at the same place (see :meth:`_shape`). Numbers no rule
    matches take the full path (and teach the bucket). Full-path results are cached by exact
    input (cleared past :attr:`max_cache` entries). Not thread-safe: use one per job.
    """

    max_cache: int = 200_000
    max_buckets: int = 200_000

    def __init__(self, *, default_region: str = "FR", allow_landline: bool = False) -> None:
        self.default_region = default_region
        self.allow_landline = allow_landline
        self._allowed = VOICE_NUMBER_TYPES if allow_landline else SMS_NUMBER_TYPES
        self._cache: dict[str, PhoneResult] = {}
        self._buckets: dict[tuple[str, int], list[tuple]] = {}
        self._learning: dict[tuple[str, int], list] = {}
        self._cc1 = frozenset(str(cc) for cc in phonenumbers.COUNTRY_CODE_TO_REGION_CODE if cc < 10)
        self._cc2 = frozenset(str(cc) for cc in phonenumbers.COUNTRY_CODE_TO_REGION_CODE if 10 <= cc < 100)

    def normalize(self, raw: str) -> PhoneResult:
        """Normalise ``raw`` exactly as :func:`normalize_phone` would with this normaliser's settings."""
        result = self._cache.get(raw)
        if result is not None:
            return result

        compact = raw.replace(" ", "").replace(".", "").replace("-", "")
        if "(" in compact:
            # "+33 (0)6 12 34 56 78": the "(0)" stays in the bucket's prefix as a national prefix.
            compact = compact.replace("(", "").replace(")", "")
        # Bucket prefix: 3 national digits after any "+"/"00" and country code, else 4 characters.
        if compact[:1] == "+":
            digits = compact[1:]
            plen = 5 if compact[1:2] in self._cc1 else 6 if compact[1:3] in self._cc2 else 7
        elif compact[:2] == "00":
            digits = compact
            plen = 6 if compact[2:3] in self._cc1 else 7 if compact[2:4] in self._cc2 else 8
        else:
            digits = compact
            plen = 4
        key = None
        if len(digits) >= 6 and digits.isdigit() and digits.isascii():
            key = (compact[:plen], len(compact))
            rules = self._buckets.get(key)
            if rules is not None:
                for offset, match, checks, prefix, region, number_type, error in rules:
                    nsn = compact[offset:]
                    if match(nsn) is not None and (checks is None or _checks_pass(checks, raw, compact)):
                        return _new_result(PhoneResult, (raw, prefix and prefix + nsn, region, number_type, error))

        result, number = _normalize(raw, self.default_region, self._allowed)
        if key is not None:
            self._learn(key, plen, raw, compact, result, number)
        cache = self._cache
        if len(cache) >= self.max_cache:
            cache.clear()
        cache[raw] = result
        return result

    def _learn(
        self, key: tuple[str, int], plen: int, raw: str, compact: str, result: PhoneResult, number: PhoneNumber | None
    ) -> None:
        learning = self._learning.get(key)
        if learning is None:
            if len(self._learning) >= self.max_buckets:
                self._learning.clear()
                self._buckets.clear()
            learning = self._learning[key] = [0, {}]
        if learning[0] >= _MAX_SAMPLES:
            return
        learning[0] += 1
        rule = self._rule(plen, raw, compact, result, number)
        if rule is None:
            return
        rules = self._buckets.get(key, ())
        if rule in rules or len(rules) >= _MAX_RULES:
            return
        pending = learning[1]
        pending[rule] = pending.get(rule, 0) + 1
        if pending[rule] >= _LEARNING_SAMPLES:
            del pending[rule]
            self._buckets[key] = [*rules, rule]

    def _rule(self, plen: int, raw: str, compact: str, result: PhoneResult, number: PhoneNumber | None) -> tuple | None:
        """The rule ``compact``'s result teaches its bucket, or ``None`` when it cannot be generalised."""
        checks: list[tuple] = []
        if result.region is None:
            # Invalid: only inputs starting with "+" or "0", for which normalize_phone's retry
            # with a "+" in front cannot succeed ("+0..." has no country code).
            if compact[0] not in "+0" or result.error is None or not raw.strip():
                return None
            if compact[0] == "+":
                if raw[0] != "+":
                    return None
                checks.append(("plus", 0, None, None))
            text = raw.strip()
            try:
                number = phonenumbers.parse(text, _parse_region(text, self.default_region))
            except NumberParseException:
                return None
            if phonenumbers.is_valid_number(number):
                return None
            pattern = _invalid_pattern(number.country_code)
            prefix = region = number_type = None
        else:
            if number is None:
                return None
            pattern = _region_type_pattern(result.region, result.number_type)
            prefix = f"+{number.country_code}" if result.e164 is not None else None
            region, number_type = result.region, result.number_type
        if pattern is None:
            return None
        nsn = phonenumbers.national_significant_number(number)
        if not compact.endswith(nsn) or (prefix is not None and result.e164 != prefix + nsn):
            return None
        offset = len(compact) - len(nsn)
        shape = self._shape(plen, compact, str(number.country_code), offset)
        if shape is None:
            return None
        viable, shape_checks = shape
        if viable:
            pattern = f"(?=(?:{viable})$){pattern}"
        checks.extend(shape_checks)
        match = _compiled(pattern).fullmatch
        if match(nsn) is None or (checks and not _checks_pass(tuple(checks), raw, compact)):
            return None
        return (offset, match, tuple(checks) or None, prefix, region, number_type, result.error)

    def _shape(self, plen: int, compact: str, cc: str, offset: int) -> tuple[str | None, list[tuple]] | None:
        """How ``phonenumbers.parse`` cut ``compact`` into (international prefix or ``+``) +
        country code + national prefix + ``compact[offset:]``, and what every number of the
        bucket must satisfy to be cut the same way: the regex the national significant number
        must match for the national prefix to be removed (its general pattern), and runtime
        checks for what the bucket's prefix does not fix (``None`` when it cannot be sure)."""
        checks: list[tuple] = []
        parse_region = _parse_region(compact, self.default_region)  # fixed by the bucket's prefix and length
        parse_metadata = phonenumbers.PhoneMetadata.metadata_for_region(parse_region)
        idd_pattern = parse_metadata.international_prefix if parse_metadata is not None else None
        idd_match = re.match(idd_pattern, compact) if idd_pattern and compact[0] != "+" else None
        if compact[0] == "+":
            nat_start = 1 + len(cc)
            if compact[1:nat_start] != cc:
                return None
        elif idd_match is not None and compact[idd_match.end() : idd_match.end() + 1] != "0":
            nat_start = idd_match.end() + len(cc)
            if compact[idd_match.end() : nat_start] != cc:
                return None
            if not (_DIGITS_RE.fullmatch(idd_pattern) and idd_match.end() <= plen):
                checks.append(("prefix", 0, _compiled(idd_pattern).match, idd_match.end()))
        else:
            # A national number: the country code is the default region's.
            if parse_metadata is None or str(parse_metadata.country_code) != cc:
                return None
            if idd_match is not None or (
                idd_pattern and not (_DIGITS_RE.fullmatch(idd_pattern) and len(idd_pattern) <= plen)
            ):
                checks.append(("prefix", 0, _compiled(idd_pattern).match, -1))
            if compact.startswith(cc):
                # phonenumbers removes a leading default country code when the number is too long
                # without removing it (length only) or when only the rest is viable (digits): only
                # the first is generalised, and then no national prefix may follow.
                general = parse_metadata.general_desc
                lengths = general.possible_length if general is not None else ()
                if offset != len(cc) or not lengths or len(compact) <= max(lengths):
                    return None
                if len(compact) in (general.possible_length_local_only or ()):
                    return None
                nat_start = len(cc)
            else:
                nat_start = 0
        if offset < nat_start:
            return None
        if nat_start > plen:
            checks.append(("head", 0, None, compact[:nat_start]))
        metadata = parse_metadata if nat_start == 0 else _main_metadata(int(cc))
        if metadata is None:
            return None
        strip = offset - nat_start
        npp = metadata.national_prefix_for_parsing
        if not npp:
            return (None, checks) if strip == 0 else None
        if metadata.national_prefix_transform_rule:
            return None
        # phonenumbers removes what the national prefix regex matches, unless the rest is not viable
        # (the general pattern, required below) and the whole number is: it must have removed exactly that.
        npp_match = re.match(npp, compact[nat_start:])
        if npp_match is None:
            if strip:
                return None
            expected = -1
        elif npp_match.end() == strip:
            expected = strip
        else:
            return None
        if not (_DIGITS_RE.fullmatch(npp) and nat_start + len(npp) <= plen):
            checks.append(("prefix", nat_start, _compiled(npp).match, expected))
        viable = _descriptor_pattern(metadata, "general_desc") if strip else None
        return viable, checks


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
