"""CSV cells a spreadsheet opens as data, never as formulas.

Excel, LibreOffice and WPS run a cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or
carriage return before one) as a formula, so a description such as ``=HYPERLINK(…)`` in an export
would act on the computer of whoever opens it. Such text gets a leading ``'`` (OWASP's advice),
which the spreadsheet shows as plain text. Numbers stay numbers: a number, or text that is only a
decimal number (``-0.5``, ``109.7421``), is written as it is. Every CSV the service writes (API and
command line) passes its cells through :func:`cell`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def cell(value: Any) -> Any:
    """``value`` as a CSV cell: text that a spreadsheet would run is prefixed with ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not NUMBER.fullmatch(value):
        return "'" + value
    return value


def row(values: Iterable[Any]) -> list[Any]:
    return [cell(v) for v in values]


def record(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: cell(v) for k, v in values.items()}
