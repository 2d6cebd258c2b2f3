"""Seeded, deterministic benchmark data, cached in bench/.cache (git-ignored).

Numbers are built from their E.164 form so every file row's expected outcome is known:
existing contacts are ``+3361xxxxxxx``, new ones ``+3362xxxxxxx``, each rendered in one of the
formats users paste (national, spaced, dotted, 0033, +33 (0), Excel's lost 0...).
"""

from __future__ import annotations

import csv
import random
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

SEED = 20261125
_SYLLABLES = ["ma", "ri", "du", "ran", "le", "roy", "mo", "reau", "ber", "nard", "pe", "tit", "fo", "ntai", "ne", "ga"]
LAST_NAMES = sorted({(a + b + c).capitalize() for a in _SYLLABLES for b in _SYLLABLES for c in _SYLLABLES[:4]})
FIRST_NAMES = ["Léa", "Jean", "Élodie", "Hugo", "Chloé", "Lucas", "Manon", "Louis", "Inès", "Noël", "Zoé", "Théo"]
COMPANIES = ["ACME", "Café de la Gare", "Boulangerie Dupré", "Garage du Port", "", "", ""]


def existing_e164(i: int) -> str:
    return f"+3361{(i * 7919) % 10**7:07d}"


def new_e164(j: int) -> str:
    return f"+3362{(j * 7919) % 10**7:07d}"


def render(e164: str, rng: random.Random) -> str:
    """One of the formats SND-4 accepts for a French mobile."""
    nsn = e164[3:]
    national = "0" + nsn
    kind = rng.randrange(8)
    if kind == 0:
        return national
    if kind == 1:
        return " ".join(national[k : k + 2] for k in range(0, 10, 2))
    if kind == 2:
        return ".".join(national[k : k + 2] for k in range(0, 10, 2))
    if kind == 3:
        return "0033" + nsn
    if kind == 4:
        return "+33 " + nsn[0] + " " + " ".join(nsn[k : k + 2] for k in range(1, 9, 2))
    if kind == 5:
        return "+33 (0)" + nsn
    if kind == 6:
        return nsn  # Excel dropped the leading 0
    return e164


INVALID = ["12", "0612", "01 42 68 53 00", "abc", "+999 123", "08 00 12 34 56"]


def import_rows(size: int, existing: int):
    """The import file's rows: (mobile as written, expected e164 or '', last, first, email, company).

    Mix: 15% numbers already in the account, 3% repeats inside the file, 2% invalid, 80% new."""
    rng = random.Random(SEED + size)
    new_j = 0
    seen: list[str] = []
    for n in range(size):
        roll = rng.random()
        last, first = rng.choice(LAST_NAMES), rng.choice(FIRST_NAMES)
        company = rng.choice(COMPANIES)
        email = f"{first.lower()}.{n}@example.com" if rng.random() < 0.5 else ""
        if roll < 0.02:
            yield rng.choice(INVALID), "", last, first, email, company
            continue
        if roll < 0.17 and existing:
            e164 = existing_e164(rng.randrange(existing))
        elif roll < 0.20 and seen:
            e164 = rng.choice(seen)
        else:
            e164 = new_e164(new_j)
            new_j += 1
            if len(seen) < 10000:
                seen.append(e164)
        yield render(e164, rng), e164, last, first, email, company


def _cached(path: Path, build) -> Path:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".part")
        build(tmp)
        tmp.replace(path)
    return path


def import_csv(cache: Path, size: int, existing: int) -> Path:
    def build(tmp):
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, delimiter=";")
            writer.writerow(["Nom", "Prénom", "Mobile", "Email", "Société"])
            for mobile, _e, last, first, email, company in import_rows(size, existing):
                writer.writerow([last, first, mobile, email, company])

    return _cached(cache / f"import-{size}-{existing}.csv", build)


def import_copy_tsv(cache: Path, size: int, existing: int, account_id: int) -> Path:
    """The same rows as contact rows for the raw COPY baseline (invalid numbers get a placeholder)."""

    def build(tmp):
        with open(tmp, "w", encoding="utf-8") as handle:
            for n, (_m, e164, last, first, email, company) in enumerate(import_rows(size, existing)):
                mobile = e164 or f"+3363{n:07d}"
                handle.write(
                    f"{account_id}\t{mobile}\tFR\t{last}\t{first}\t{email}\t{company}\t2026-01-01\t2026-01-01\n"
                )

    return _cached(cache / f"import-{size}-{existing}-copy-{account_id}.tsv", build)


def existing_contacts_tsv(cache: Path, size: int, account_id: int) -> Path:
    def build(tmp):
        rng = random.Random(SEED)
        with open(tmp, "w", encoding="utf-8") as handle:
            for i in range(size):
                last, first = rng.choice(LAST_NAMES), rng.choice(FIRST_NAMES)
                handle.write(f"{account_id}\t{existing_e164(i)}\tFR\t{last}\t{first}\t\t\t2026-01-01\t2026-01-01\n")

    return _cached(cache / f"existing-{size}-{account_id}.tsv", build)


CONTACT_COPY_COLUMNS = (
    "account_id",
    "mobile",
    "region",
    "last_name",
    "first_name",
    "email",
    "company",
    "created_at",
    "updated_at",
)


def phone_corpus(size: int) -> list[str]:
    """A mixed corpus: French mobiles in every format, overseas departments dialled nationally,
    foreign mobiles, landlines and garbage."""
    rng = random.Random(SEED * 3 + size)
    overseas = ["0690", "0694", "0696", "0697", "0692", "0693", "0639"]
    # Valid mobiles abroad: prefix and the number of digits that completes it.
    foreign = [("+44 7911 ", 6), ("+32 470 ", 6), ("+41 79 ", 7), ("+49 151 ", 8), ("+1 415 2", 6), ("+212 6 ", 8)]
    out = []
    for n in range(size):
        roll = rng.random()
        if roll < 0.70:
            out.append(
                render(f"+336{rng.randrange(10**8):08d}", rng)
                if rng.random() < 0.8
                else render(f"+337{rng.randrange(30, 100):02d}{rng.randrange(10**6):06d}", rng)
            )
        elif roll < 0.80:
            out.append(rng.choice(overseas) + f"{rng.randrange(10**6):06d}")
        elif roll < 0.92:
            prefix, digits = rng.choice(foreign)
            out.append(prefix + f"{rng.randrange(10**digits):0{digits}d}")
        elif roll < 0.97:
            out.append(f"0{rng.choice('12345')}{rng.randrange(10**8):08d}")
        else:
            out.append(rng.choice(INVALID + [str(n), "+33 6", "06 12 34 56 78 90"]))
    return out


def _col(index: int) -> str:
    name = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        name = chr(65 + rem) + name
    return name


def import_xlsx(cache: Path, size: int) -> Path:
    """The import rows as a real .xlsx (written directly as SpreadsheetML: openpyxl needs ~46 s per
    1M rows). Half the phone cells are numbers, as when Excel drops the leading 0."""

    def build(tmp):
        rng = random.Random(SEED + 7)
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            zf.writestr("[Content_Types].xml", _CONTENT_TYPES)
            zf.writestr("_rels/.rels", _RELS)
            zf.writestr("xl/workbook.xml", _WORKBOOK)
            zf.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
            with zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
                sheet.write(_SHEET_HEAD.encode())
                rows = [("Nom", "Prénom", "Mobile", "Email", "Société")]
                rows_iter = (
                    (last, first, mobile, email, company)
                    for mobile, _e, last, first, email, company in import_rows(size, 0)
                )
                buf = []
                for r, row in enumerate(_chain(rows, rows_iter), start=1):
                    cells = []
                    for c, value in enumerate(row):
                        ref = f"{_col(c)}{r}"
                        if c == 2 and r > 1 and value.isdigit() and rng.random() < 0.5:
                            cells.append(f'<c r="{ref}"><v>{int(value)}</v></c>')
                        elif value:
                            cells.append(f'<c r="{ref}" t="inlineStr"><is><t>{escape(value)}</t></is></c>')
                    buf.append(f'<row r="{r}">{"".join(cells)}</row>')
                    if len(buf) >= 5000:
                        sheet.write("".join(buf).encode())
                        buf = []
                sheet.write(("".join(buf) + "</sheetData></worksheet>").encode())

    return _cached(cache / f"import-{size}.xlsx", build)


def _chain(*iterables):
    for it in iterables:
        yield from it


_CONTENT_TYPES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"""  # noqa: E501
_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"""  # noqa: E501
_WORKBOOK = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Contacts" sheetId="1" r:id="rId1"/></sheets></workbook>"""  # noqa: E501
_WORKBOOK_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"""  # noqa: E501
_SHEET_HEAD = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"""  # noqa: E501
