"""Reading contact files (ADR-3): format, encoding and separator detection, streaming rows,
guessing which column is which. Pure module: no Django, so it is testable and benchmarkable alone.

Formats: CSV/TXT (any single-character separator, detected; UTF-8 with or without BOM, UTF-16
with BOM as Excel's "Texte Unicode" writes it, Windows-1252 otherwise), .xlsx and legacy .xls
(both read by python-calamine). Every reader yields lists of strings, one per record.
"""

from __future__ import annotations

import codecs
import csv
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Final

__all__ = [
    "FIELDS",
    "SEPARATORS",
    "FileRejected",
    "FileInfo",
    "count_records",
    "detect_encoding",
    "detect_format",
    "detect_separator",
    "guess_has_header",
    "guess_mapping",
    "inspect_file",
    "iter_records",
    "open_records",
]

FIELDS: Final = ("last_name", "first_name", "mobile", "email", "company")

SEPARATORS: Final[dict[str, str]] = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe", ":": "colon"}
_CANDIDATE_SEPARATORS: Final = ",;\t|:"

_XLSX_MAGIC: Final = b"PK\x03\x04"
_XLS_MAGIC: Final = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_SNIFF_BYTES: Final = 64 * 1024


class FileRejected(ValueError):
    """The file cannot be imported; the message is shown to the user as is."""


@dataclass(frozen=True, slots=True)
class FileInfo:
    file_format: str  # "csv", "xlsx" or "xls"
    encoding: str  # CSV only
    separator: str  # CSV only
    preview: list[list[str]]


def detect_format(head: bytes, filename: str = "") -> str:
    """``xlsx``/``xls`` by their magic bytes, ``csv`` for text; anything else is refused."""
    if head.startswith(_XLSX_MAGIC):
        return "xlsx"
    if head.startswith(_XLS_MAGIC):
        return "xls"
    if not head.strip(b"\xef\xbb\xbf\xff\xfe\r\n\t "):
        raise FileRejected("The file is empty.")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "csv"
    # Text files have no NUL bytes (UTF-16 without BOM is not supported: Excel always writes one).
    if b"\x00" in head[:4096] or filename.lower().endswith((".pdf", ".doc", ".docx", ".zip", ".png", ".jpg")):
        raise FileRejected("This is not a CSV, .xlsx or .xls file.")
    return "csv"


def detect_encoding(head: bytes) -> str:
    """UTF-8 (``utf-8-sig`` drops a BOM), UTF-16 by its BOM, else Windows-1252 (Excel's "CSV" on Windows)."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the sniff window is still UTF-8.
        if exc.start < len(head) - 3:
            return "cp1252"
    return "utf-8"


def detect_separator(sample: str) -> str:
    """The candidate separator that splits the first lines into the same number (> 1) of fields
    most consistently; comma when nothing splits (a one-column file of numbers)."""
    lines = [line for line in sample.splitlines()[:20] if line.strip()]
    if len(lines) > 1 and not sample.endswith(("\n", "\r")):
        lines = lines[:-1]  # the last line may be cut by the sniff window
    best, best_score = ",", 0.0
    for sep in _CANDIDATE_SEPARATORS:
        counts = [len(row) for row in csv.reader(lines, delimiter=sep)]
        if not counts or max(counts) < 2:
            continue
        mode = max(set(counts), key=counts.count)
        score = counts.count(mode) / len(counts) + (mode / 1000)
        if mode > 1 and score > best_score:
            best, best_score = sep, score
    return best


def _cell_to_str(value) -> str:
    if type(value) is str:  # most cells: checked first, as every cell of a 1M-row sheet comes here
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, float):
        # Excel stores 0612345678 as the number 612345678: give the digits back (the phone
        # normaliser restores the national 0).
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, datetime | date | time | timedelta):
        return value.isoformat() if hasattr(value, "isoformat") else str(value)
    return str(value).strip()


def _open_text(path: Path, encoding: str):
    return open(path, encoding=encoding, newline="", errors="strict")


def open_records(
    path: Path, *, file_format: str, encoding: str = "utf-8", separator: str = ","
) -> tuple[int, Iterator[list[str]]]:
    """(estimated record count for the progress bar, iterator over every record of the file's
    first sheet). CSV rows are streamed, never all in memory; calamine holds one sheet's cells
    (its design), loaded once. Reading raises FileRejected on unreadable data."""
    if file_format == "csv":
        return count_records(path, file_format="csv"), _csv_records(path, encoding, separator)
    from python_calamine import CalamineWorkbook

    try:
        workbook = CalamineWorkbook.from_path(str(path))
        if not workbook.sheet_names:
            raise FileRejected("The workbook has no sheet.")
        sheet = workbook.get_sheet_by_index(0)
        rows = sheet.iter_rows()
    except FileRejected:
        raise
    except Exception as exc:  # calamine raises its own error types for every kind of corruption
        raise FileRejected("The spreadsheet is damaged or is not a real .xlsx/.xls file.") from exc
    return sheet.height, (list(map(_cell_to_str, row)) for row in rows)


def _csv_records(path: Path, encoding: str, separator: str) -> Iterator[list[str]]:
    try:
        with _open_text(path, encoding) as handle:
            for row in csv.reader(handle, delimiter=separator):
                yield list(map(str.strip, row))
    except UnicodeDecodeError as exc:
        raise FileRejected(f"The file is not valid {encoding} text (byte {exc.start}).") from exc
    except csv.Error as exc:
        raise FileRejected(f"The CSV file is malformed: {exc}.") from exc


def iter_records(path: Path, *, file_format: str, encoding: str = "utf-8", separator: str = ",") -> Iterator[list[str]]:
    """Every record of the file (see ``open_records``)."""
    if file_format == "csv":
        return _csv_records(path, encoding, separator)
    return open_records(path, file_format=file_format)[1]


def count_records(path: Path, *, file_format: str) -> int:
    """A fast estimate of the record count for the progress bar (newlines for CSV, the sheet height otherwise)."""
    if file_format == "csv":
        count, last = 0, b"\n"
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                count += chunk.count(b"\n")
                last = chunk[-1:]
        return count + (last not in (b"\n", b"\x00"))
    from python_calamine import CalamineWorkbook

    try:
        return CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).height
    except Exception:
        return 0


def inspect_file(path: Path, *, filename: str = "", encoding: str = "", separator: str = "", rows: int = 8) -> FileInfo:
    """Format, encoding, separator (detected unless given) and the first ``rows`` records.
    Raises FileRejected for an empty, unreadable or wrong-type file."""
    with open(path, "rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    file_format = detect_format(head, filename)
    if file_format == "csv":
        encoding = encoding or detect_encoding(head)
        try:
            sample = head.decode(encoding, errors="ignore")
        except LookupError as exc:
            raise FileRejected(f"Unknown encoding {encoding}.") from exc
        separator = separator or detect_separator(sample)
    else:
        encoding = separator = ""
    preview: list[list[str]] = []
    for record in iter_records(path, file_format=file_format, encoding=encoding, separator=separator):
        if any(record):
            preview.append(record)
            if len(preview) >= rows:
                break
    if not preview:
        raise FileRejected("The file is empty.")
    return FileInfo(file_format=file_format, encoding=encoding, separator=separator, preview=preview)


def _key(header: str) -> str:
    text = unicodedata.normalize("NFKD", header).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", " ", text).strip()


# Normalised header words -> field. Checked in order: "telephone portable" is a mobile, "nom de
# la societe" a company, so more specific keys come first.
_HEADER_KEYS: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("email", ("e mail", "email", "mail", "courriel", "adresse mail", "adresse electronique")),
    ("company", ("societe", "entreprise", "company", "organisation", "organization", "raison sociale", "firm")),
    ("first_name", ("prenom", "first name", "firstname", "given name", "forename", "vorname")),
    ("last_name", ("nom de famille", "last name", "lastname", "surname", "family name", "nom", "name", "nachname")),
    (
        "mobile",
        ("mobile", "portable", "gsm", "cell", "telephone", "tel", "phone", "numero", "number", "msisdn", "handy"),
    ),
)


def guess_mapping(header: list[str]) -> dict[str, int]:
    """Field -> column index guessed from header cells ('Nom', 'Prénom', 'Mobile', 'Téléphone',
    'Société', 'E-mail'...). Each column is used at most once; a field without a match is absent."""
    mapping: dict[str, int] = {}
    used: set[int] = set()
    keys = [_key(cell) for cell in header]
    for exact in (True, False):
        for field, words in _HEADER_KEYS:
            if field in mapping:
                continue
            for index, key in enumerate(keys):
                if index in used or not key:
                    continue
                hit = key in words if exact else any(re.search(rf"\b{re.escape(w)}\b", key) for w in words)
                if hit:
                    mapping[field] = index
                    used.add(index)
                    break
    return mapping


_DIGITS_RE: Final = re.compile(r"^[+\d][\d\s.\-/()]{5,}$")


def guess_has_header(first: list[str]) -> bool:
    """A first record is a header when it names a known field and holds no phone-like cell."""
    return bool(guess_mapping(first)) and not any(_DIGITS_RE.match(cell) for cell in first)


def guess_mobile_column(records: list[list[str]]) -> int | None:
    """Headerless files: the column whose cells look most like phone numbers."""
    scores: dict[int, int] = {}
    for record in records:
        for index, cell in enumerate(record):
            if _DIGITS_RE.match(cell):
                scores[index] = scores.get(index, 0) + 1
    return max(scores, key=scores.get) if scores else None
