"""CSV (and semicolon- or tab-separated) tracks, as handhelds and spreadsheets export them.

The header row is found among the first lines by its column names (English or Chinese, any case,
units in brackets ignored); it also decides the delimiter. Rows are then read one at a time with
the ``csv`` module. Text must be UTF-8 (BOM or not) or UTF-16 with a BOM; otherwise GB18030, the
encoding of Chinese Windows exports, is tried, with a warning.

Every line is read at most ``MAX_LINE_CHARS`` (+1) characters at a time, so a file made of one
40 MB line is refused after reading 64 KiB of it, and a row may have at most ``MAX_COLUMNS`` cells
and a cell at most ``MAX_FIELD_CHARS`` characters (the ``csv`` module's own limit, for a quoted cell
that spans lines).
"""

from __future__ import annotations

import codecs
import csv
import re

from geodata.errors import Problem
from geodata.fixes import TrackFixes
from geodata.trackio.sink import FixSink, refuse

COLUMNS: dict[str, tuple[str, ...]] = {
    "lon": ("lon", "lng", "long", "longitude", "x", "经度"),
    "lat": ("lat", "latitude", "y", "纬度"),
    "time": ("time", "timestamp", "datetime", "date_time", "时间", "定位时间"),
    "ele": ("ele", "elevation", "alt", "altitude", "高程", "海拔"),
    "segment": ("segment", "seg", "segment_id", "track", "track_id", "trkseg", "轨迹段", "分段"),
}
_NAME_TO_FIELD = {name: field for field, names in COLUMNS.items() for name in names}
DELIMITERS = (",", ";", "\t")
HEADER_SEARCH_LINES = 10  # a title line or two above the header is common in handheld exports
_UNITS = re.compile(r"[(\[（【].*?[)\]）】]")
NAN = float("nan")
# A track's row is well under 1 KiB; these are far above any export and far below what would hurt.
MAX_LINE_CHARS = 64 * 1024
MAX_COLUMNS = 1000
MAX_FIELD_CHARS = csv.field_size_limit()  # 128 Ki characters unless the process changed it


def read_csv(path, *, max_fixes: int) -> TrackFixes:
    encoding, warning = text_encoding(path)
    sink = FixSink(max_fixes=max_fixes, source_format="CSV")
    if warning:
        sink.warnings.append(warning)
    with open(path, encoding=encoding, newline="") as f:
        header_line, delimiter, columns = _find_header(_bounded_lines(f))
        f.seek(0)
        rows = csv.reader(_bounded_lines(f), delimiter=delimiter)
        try:
            for _ in rows:
                if rows.line_num >= header_line:
                    break
            _read_rows(rows, sink, columns, delimiter)
        except csv.Error as exc:
            # A quoted cell running on over many lines (the only thing left for csv to refuse).
            raise refuse(
                "field-too-long",
                f"line {rows.line_num}: the CSV cannot be read ({exc}); a cell may have at most "
                f'{MAX_FIELD_CHARS:,} characters — check for an unclosed quote (")',
                line=rows.line_num,
                limit=MAX_FIELD_CHARS,
            ) from None
    if not len(sink):
        raise refuse("no-track", "no track in file: the CSV has a header but no rows of fixes")
    return sink.finish()


def _read_rows(rows, sink: FixSink, columns: dict[str, int], delimiter: str) -> None:
    i_lon, i_lat = columns["lon"], columns["lat"]
    i_time, i_ele, i_seg = columns.get("time"), columns.get("ele"), columns.get("segment")
    lon_add, lat_add, ele_add, time_add, line_add = sink.appenders()
    last_segment = None
    for row in rows:
        if len(row) > MAX_COLUMNS:
            raise refuse(
                "too-many-columns",
                f"line {rows.line_num} has {len(row):,} columns; a CSV track may have at most {MAX_COLUMNS:,}",
                line=rows.line_num,
                limit=MAX_COLUMNS,
            )
        if not any(cell.strip() for cell in row):
            continue  # blank lines, trailing delimiters
        if i_seg is not None:
            segment = row[i_seg].strip() if i_seg < len(row) else ""
            if segment != last_segment:
                sink.end_segment()
                last_segment = segment
        i = len(sink)
        line_add(rows.line_num)
        try:
            lon_add(_number(row[i_lon], delimiter))
            lat_add(_number(row[i_lat], delimiter))
        except IndexError:
            message = f"{sink.where(i)}: the row has only {len(row)} columns"
            raise refuse("bad-row", message, fix=i + 1, line=rows.line_num) from None
        except ValueError:
            what, text = ("longitude", row[i_lon]) if len(sink.lon) == i else ("latitude", row[i_lat])
            raise sink.bad_value(i, what, text) from None
        text = row[i_ele].strip() if i_ele is not None and i_ele < len(row) else ""
        try:
            ele_add(_number(text, delimiter) if text else NAN)
        except ValueError:
            raise sink.bad_value(i, "elevation", text) from None
        time_add(row[i_time] if i_time is not None and i_time < len(row) else "")
        if not len(sink) % 1024:
            sink.check_count()
            sink.flush_times()


def _number(text: str, delimiter: str) -> float:
    try:
        return float(text)
    except ValueError:
        if delimiter != ",":  # "109,5" with a semicolon or tab delimiter: a decimal comma
            return float(text.replace(",", "."))
        raise


def _normalise(name: str) -> str:
    name = _UNITS.sub("", name.replace("\ufeff", "")).strip().strip("'\"").strip().lower()
    return re.sub(r"[\s\-]+", "_", name)


def _bounded_lines(f):
    """The lines of text file ``f``, none read whole if longer than ``MAX_LINE_CHARS``: such a line
    is refused after reading ``MAX_LINE_CHARS + 1`` characters of it."""
    number = 0
    while line := f.readline(MAX_LINE_CHARS + 1):
        number += 1
        if len(line) > MAX_LINE_CHARS and not line.endswith(("\n", "\r")):
            raise refuse(
                "line-too-long",
                f"line {number} is longer than {MAX_LINE_CHARS:,} characters, the most a CSV line "
                "may have (a track's row is a few dozen)",
                line=number,
                limit=MAX_LINE_CHARS,
            )
        yield line


def _find_header(lines) -> tuple[int, str, dict[str, int]]:
    """(1-based line of the header, delimiter, field → column index), or a refusal naming what was seen."""
    seen = []
    for number in range(1, HEADER_SEARCH_LINES + 1):
        line = next(lines, "")
        if not line:
            break
        if not line.strip():
            continue
        seen.append(line.strip())
        best = None
        for delimiter in DELIMITERS:
            if line.count(delimiter) >= MAX_COLUMNS:
                raise refuse(
                    "too-many-columns",
                    f"line {number} has more than {MAX_COLUMNS:,} columns; a CSV track may have at most "
                    f"{MAX_COLUMNS:,}",
                    line=number,
                    limit=MAX_COLUMNS,
                )
            cells = next(csv.reader([line], delimiter=delimiter), [])
            columns: dict[str, int] = {}
            for index, cell in enumerate(cells):
                field = _NAME_TO_FIELD.get(_normalise(cell))
                if field and field not in columns:
                    columns[field] = index
            if "lon" in columns and "lat" in columns and (best is None or len(columns) > len(best[2])):
                best = (number, delimiter, columns)
        if best:
            return best
    if not seen:
        raise refuse("no-track", "no track in file: the CSV has only blank lines")
    raise refuse(
        "no-columns",
        "no header row naming the longitude and latitude columns was found in the first "
        f"{HEADER_SEARCH_LINES} lines (names such as lon/lng/longitude/经度 and lat/latitude/纬度 are "
        f"recognised); the first line reads {seen[0][:120]!r}",
    )


def text_encoding(path) -> tuple[str, Problem | None]:
    """The encoding to read ``path`` with, and a warning if it is not UTF-8; refuses other text."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", None  # Excel's "Unicode text" export
    bad = _first_undecodable(path, "utf-8")
    if bad is None:
        return "utf-8-sig", None
    offset, line = bad
    if _first_undecodable(path, "gb18030") is None:
        return "gb18030", Problem(
            "encoding",
            f"the file is not UTF-8 (byte {offset}, line {line}); it was read as GB18030, the "
            "Chinese Windows encoding — check that names and times look right",
            {"offset": offset, "line": line},
        )
    raise refuse(
        "encoding",
        f"not UTF-8 text: the byte at offset {offset} (line {line}) is not valid UTF-8, and the "
        "file does not read as GB18030 either; save it as UTF-8",
        offset=offset,
        line=line,
    )


def _first_undecodable(path, encoding: str) -> tuple[int, int] | None:
    """(byte offset, line) of the first byte that does not decode, streaming in 1 MiB chunks."""
    decoder = codecs.getincrementaldecoder(encoding)()
    fed = 0
    newlines = 0
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 20)
            pending = decoder.getstate()[0]
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                data = pending + chunk
                return fed - len(pending) + exc.start, newlines + data[: exc.start].count(b"\n") + 1
            if not chunk:
                return None
            fed += len(chunk)
            newlines += chunk.count(b"\n")
