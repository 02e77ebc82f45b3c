"""Tables for people to open in a spreadsheet: CSV (UTF-8 with BOM, for Excel and WPS) and XLSX.

Every text cell goes through :mod:`patrol.csvsafe`, in both formats: a cell that a spreadsheet would
run as a formula is written as text. In XLSX numbers are written as numbers and None as an empty
cell; openpyxl would otherwise store any text starting with ``=`` as a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from patrol import csvsafe

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def to_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    buffer.write("\ufeff")  # so that Excel opens Chinese text as UTF-8
    writer = csv.writer(buffer)
    writer.writerow(csvsafe.row(header))
    for row in rows:
        writer.writerow(csvsafe.row(row))
    return buffer.getvalue()


def _xlsx_cell(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    return csvsafe.cell(str(value))


def to_xlsx(sheets: Sequence[tuple[str, Sequence[str], Iterable[Sequence[Any]]]]) -> bytes:
    """One workbook of (title, header, rows) sheets; the header row is bold and frozen."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    book.remove(book.active)
    for title, header, rows in sheets:
        sheet = book.create_sheet(title=title[:31])
        sheet.append([_xlsx_cell(h) for h in header])
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        sheet.freeze_panes = "A2"
        for row in rows:
            sheet.append([_xlsx_cell(v) for v in row])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
