"""Parsing of every accepted format and encoding with real small files written by the tests."""

import codecs
from pathlib import Path

import pytest
from openpyxl import Workbook

from addressbook import importers

FIXTURES = Path(__file__).parent / "fixtures"
ROWS = [["Nom", "Prénom", "Mobile", "Email", "Société"], ["Dupré", "Élodie", "06 12 34 56 78", "e@example.com", "Café"]]


def _csv(tmp_path, text: str, encoding: str, sep: str = ";", name="c.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.replace(";", sep).encode(encoding))
    return path


TEXT = "Nom;Prénom;Mobile;Email;Société\r\nDupré;Élodie;06 12 34 56 78;e@example.com;Café\r\n"


@pytest.mark.parametrize(
    ("encoding", "detected"),
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("cp1252", "cp1252"), ("utf-16", "utf-16")],
)
def test_csv_encodings_are_detected_and_decoded(tmp_path, encoding, detected):
    info = importers.inspect_file(_csv(tmp_path, TEXT, encoding))
    assert (info.file_format, info.encoding, info.separator) == ("csv", detected, ";")
    assert info.preview == ROWS


def test_excel_unicode_text_is_utf16_with_tabs(tmp_path):
    # Excel's "Texte Unicode" export: UTF-16 LE with BOM, tab-separated.
    path = tmp_path / "export.txt"
    path.write_bytes(codecs.BOM_UTF16_LE + TEXT.replace(";", "\t").encode("utf-16-le"))
    info = importers.inspect_file(path)
    assert (info.encoding, info.separator) == ("utf-16", "\t")
    assert info.preview == ROWS


@pytest.mark.parametrize("sep", [",", ";", "\t", "|", ":"])
def test_separators_are_detected(tmp_path, sep):
    info = importers.inspect_file(_csv(tmp_path, TEXT.replace(":", ""), "utf-8", sep))
    assert info.separator == sep
    assert info.preview[1][2] == "06 12 34 56 78"


def test_separator_can_be_overridden(tmp_path):
    path = _csv(tmp_path, "a,b;c\r\n1,2;3\r\n", "utf-8", ";")
    assert importers.inspect_file(path, separator=",").preview[0] == ["a", "b;c"]
    assert importers.inspect_file(path, separator=";").preview[0] == ["a,b", "c"]


def test_quoted_separator_inside_a_cell(tmp_path):
    path = _csv(tmp_path, 'Nom,Mobile\r\n"Martin, Jean",0612345678\r\n', "utf-8", ",")
    assert importers.inspect_file(path).preview[1] == ["Martin, Jean", "0612345678"]


def test_single_column_of_numbers(tmp_path):
    path = _csv(tmp_path, "0612345678\n0698765432\n", "utf-8")
    info = importers.inspect_file(path)
    assert info.preview == [["0612345678"], ["0698765432"]]


def test_xlsx_numbers_lose_no_digits(tmp_path):
    wb = Workbook()
    ws = wb.active
    ws.append(ROWS[0])
    ws.append(["Dupré", "Élodie", 612345678, "e@example.com", "Café"])  # Excel turned 0612345678 into a number
    ws.append(["Big", "Int", 33612345678, None, None])
    path = tmp_path / "c.xlsx"
    wb.save(path)
    info = importers.inspect_file(path)
    assert info.file_format == "xlsx"
    assert info.preview[1][2] == "612345678"
    assert info.preview[2] == ["Big", "Int", "33612345678", "", ""]


def test_legacy_xls_fixture():
    # tests/addressbook/fixtures/contacts.xls was written once with xlwt in a throwaway venv.
    info = importers.inspect_file(FIXTURES / "contacts.xls")
    assert info.file_format == "xls"
    assert info.preview[0] == ["Nom", "Prénom", "Téléphone", "Email", "Société"]
    assert info.preview[1] == ["Dupré", "Élodie", "612345678", "elodie@example.com", "Café Noël"]
    assert len(list(importers.iter_records(FIXTURES / "contacts.xls", file_format="xls"))) == 4


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"\xef\xbb\xbf\r\n\r\n", "empty"),
        (b"%PDF-1.4\x00\x01\x02", "not a CSV"),
        (b"PK\x03\x04garbage-not-a-zip", "damaged"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "damaged"),
    ],
)
def test_bad_files_are_rejected_with_a_reason(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(importers.FileRejected, match=message):
        importers.inspect_file(path)


def test_wrong_encoding_override_is_a_clear_error(tmp_path):
    path = _csv(tmp_path, TEXT, "cp1252")
    with pytest.raises(importers.FileRejected, match="not valid utf-8"):
        list(importers.iter_records(path, file_format="csv", encoding="utf-8", separator=";"))


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            ["Nom", "Prénom", "Mobile", "Email", "Société"],
            {"last_name": 0, "first_name": 1, "mobile": 2, "email": 3, "company": 4},
        ),
        (["Téléphone", "NOM", "PRENOM"], {"mobile": 0, "last_name": 1, "first_name": 2}),
        (["Société", "Tél. portable", "E-mail"], {"company": 0, "mobile": 1, "email": 2}),
        (
            ["First name", "Last name", "Phone number", "Company"],
            {"first_name": 0, "last_name": 1, "mobile": 2, "company": 3},
        ),
        (["Nom de famille", "Numéro de mobile", "Adresse mail"], {"last_name": 0, "mobile": 1, "email": 2}),
        (["foo", "bar"], {}),
    ],
)
def test_mapping_is_guessed_from_headers(header, expected):
    assert importers.guess_mapping(header) == expected


def test_header_detection_and_headerless_mobile_column():
    assert importers.guess_has_header(["Nom", "Mobile"])
    assert not importers.guess_has_header(["Martin", "06 12 34 56 78"])
    assert importers.guess_mobile_column([["Martin", "06 12 34 56 78"], ["Durand", "+33698765432"]]) == 1


def test_count_records_estimates_the_rows(tmp_path):
    assert importers.count_records(_csv(tmp_path, TEXT, "utf-8"), file_format="csv") == 2
    assert importers.count_records(_csv(tmp_path, "a\nb", "utf-8", name="d.csv"), file_format="csv") == 2
