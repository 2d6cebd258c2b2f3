"""CSV and .xlsx downloads that stream and are safe against spreadsheet formula injection."""

import csv
from collections.abc import Iterable, Sequence

from django.http import HttpResponse, StreamingHttpResponse

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    """A cell value a spreadsheet will not evaluate: text starting with = + - @ TAB CR gets a
    leading apostrophe (OWASP CSV injection). Numbers and other types pass through."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


class _Echo:
    def write(self, value):
        return value


def csv_response(*, filename: str, header: Sequence[str], rows: Iterable[Sequence]) -> StreamingHttpResponse:
    """Stream rows as a UTF-8 CSV with a BOM (so Excel reads accents), memory flat in the row count."""
    writer = csv.writer(_Echo())

    def lines():
        yield "\ufeff" + writer.writerow(header)
        for row in rows:
            yield writer.writerow([safe_cell(v) for v in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def xlsx_response(*, filename: str, header: Sequence[str], rows: Iterable[Sequence], title: str = "Export"):
    """An .xlsx written with openpyxl's write-only mode (constant memory per row)."""
    from tempfile import SpooledTemporaryFile

    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=title[:31])
    sheet.append(list(header))
    for row in rows:
        sheet.append([safe_cell(v) for v in row])
    with SpooledTemporaryFile(max_size=16 * 1024 * 1024) as buffer:
        workbook.save(buffer)
        buffer.seek(0)
        data = buffer.read()
    response = HttpResponse(data, content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
