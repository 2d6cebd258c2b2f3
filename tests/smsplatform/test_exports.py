import csv
import io

from openpyxl import load_workbook

from smsplatform.exports import csv_response, safe_cell, xlsx_response

ROWS = [['=HYPERLINK("http://evil")', "+33612345678", "-1", "@SUM(A1)", "plain", 42]]


def test_safe_cell_neutralises_formulas_and_keeps_the_rest():
    assert [safe_cell(v) for v in ROWS[0]] == [
        '\'=HYPERLINK("http://evil")',
        "'+33612345678",
        "'-1",
        "'@SUM(A1)",
        "plain",
        42,
    ]


def test_csv_export_is_escaped_and_has_a_bom():
    response = csv_response(filename="x.csv", header=["a", "b", "c", "d", "e", "f"], rows=iter(ROWS))
    content = b"".join(response.streaming_content).decode("utf-8")
    assert content.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(content.lstrip("\ufeff"))))
    assert rows[1][:4] == ['\'=HYPERLINK("http://evil")', "'+33612345678", "'-1", "'@SUM(A1)"]
    assert response["Content-Disposition"] == 'attachment; filename="x.csv"'


def test_xlsx_export_is_escaped():
    response = xlsx_response(filename="x.xlsx", header=["a", "b", "c", "d", "e", "f"], rows=iter(ROWS))
    sheet = load_workbook(io.BytesIO(response.content)).active
    values = [cell.value for cell in sheet[2]]
    assert values[:4] == ['\'=HYPERLINK("http://evil")', "'+33612345678", "'-1", "'@SUM(A1)"] and values[5] == 42
