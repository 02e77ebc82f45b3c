"""CQL2 filters (OGC API – Features Part 3) compiled into SQLAlchemy expressions.

The text and JSON encodings are parsed and checked by ``cql2`` (developmentseed's Rust parser);
what comes out is CQL2-JSON, which this module walks and turns into SQL *expressions* over the
collection's queryables. Literals always travel as bound parameters, property names are looked up
in the collection's queryables (never spliced), so nothing in a filter reaches SQL as text.

Supported: ``and``/``or``/``not``; ``= <> < <= > >=``; ``like``, ``in``, ``between``, ``isNull``
(advanced comparison); ``casei``; property–property comparisons; ``s_intersects`` with a bbox or
any GeoJSON geometry; ``t_intersects``, ``t_before``, ``t_after``, ``t_during``, ``t_equals`` and
``t_disjoint`` on instant properties with a timestamp, a date (a whole China-time day) or an
interval (``..`` for an open end). Arithmetic and the other spatial/temporal/array functions are
refused with a message that names them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import cql2
import shapely
from sqlalchemy import String, and_, bindparam, false, func, not_, or_, true
from sqlalchemy.sql.elements import ColumnElement

from patrol.errors import InvalidRequest

CHINA = ZoneInfo("Asia/Shanghai")
TYPES = ("string", "integer", "number", "boolean", "timestamp", "geometry")
COMPARISONS = {"=": "__eq__", "<>": "__ne__", "<": "__lt__", "<=": "__le__", ">": "__gt__", ">=": "__ge__"}
TEMPORAL = ("t_intersects", "t_before", "t_after", "t_during", "t_equals", "t_disjoint")


@dataclass(frozen=True)
class Queryable:
    """A property a filter (and ``sortby``) may name, the SQL expression behind it and its type."""

    column: ColumnElement
    type: str  # one of TYPES
    title: str = ""
    enum: tuple[str, ...] | None = None

    def schema(self) -> dict[str, Any]:
        """This property as JSON Schema, for ``/queryables``."""
        if self.type == "geometry":
            body: dict[str, Any] = {"format": "geometry-any"}
        elif self.type == "timestamp":
            body = {"type": "string", "format": "date-time"}
        else:
            body = {"type": self.type}
        if self.title:
            body["title"] = self.title
        if self.enum:
            body["enum"] = list(self.enum)
        return body


class FilterError(InvalidRequest):
    """A filter that cannot be parsed or does not fit the collection (an OGC 400)."""

    def __init__(self, message: str, parameter: str = "filter"):
        super().__init__(message, field=parameter)
        self.parameter = parameter


def parse(text: str, lang: str | None) -> dict[str, Any]:
    """CQL2-JSON for a ``filter`` given as ``cql2-text`` (default) or ``cql2-json``."""
    lang = lang or "cql2-text"
    try:
        if lang in ("cql2-text", "cql-text"):  # GDAL asks for cql-text, the draft's name
            expr = cql2.parse_text(text)
        elif lang == "cql2-json":
            expr = cql2.parse_json(text)
        else:
            raise FilterError(f"unknown filter-lang {lang!r}: use cql2-text or cql2-json", "filter-lang")
        return expr.to_json()
    except (cql2.ParseError, cql2.ValidationError, ValueError) as error:
        first = str(error).strip().splitlines()
        raise FilterError(
            f"the filter is not valid {lang}: {' '.join(s.strip() for s in first)[:300]}"
        ) from None


@dataclass
class Compiler:
    """Turns one CQL2-JSON tree into a WHERE clause for a collection."""

    queryables: Mapping[str, Queryable]
    dialect: str
    # Geometry literals arrive in the filter CRS; this maps them to stored lon/lat (WGS84).
    to_storage: Callable[[shapely.Geometry], shapely.Geometry] = lambda g: g

    def compile(self, node: Any) -> ColumnElement:
        if isinstance(node, bool):
            return true() if node else false()
        if not isinstance(node, dict) or "op" not in node:
            raise FilterError(f"a filter must be a condition, not {json.dumps(node)[:80]}")
        op, args = str(node["op"]).lower(), node.get("args", [])
        if op in ("and", "or"):
            parts = [self.compile(a) for a in args]
            return and_(*parts) if op == "and" else or_(*parts)
        if op == "not":
            return not_(self.compile(args[0]))
        if op in COMPARISONS:
            return self._comparison(op, args)
        if op == "like":
            return self._like(args)
        if op == "in":
            return self._in(args)
        if op == "between":
            return self._between(args)
        if op == "isnull":
            return self._property(args[0]).column.is_(None)
        if op == "s_intersects":
            return self._s_intersects(args)
        if op in TEMPORAL:
            return self._temporal(op, args)
        raise FilterError(f"the operator {node['op']!r} is not supported here")

    # --- operands ---------------------------------------------------------------------------

    def _property(self, node: Any) -> Queryable:
        if not (isinstance(node, dict) and "property" in node):
            raise FilterError(f"expected a property name, got {json.dumps(node)[:80]}")
        name = node["property"]
        if name not in self.queryables:
            known = ", ".join(self.queryables)
            raise FilterError(f"unknown property {name!r} in the filter; queryables: {known}")
        return self.queryables[name]

    def _operand(self, node: Any, like: Queryable | None = None) -> tuple[Any, str]:
        """(SQL expression or Python value, type) of one side of a comparison."""
        if isinstance(node, dict) and "property" in node:
            q = self._property(node)
            return q.column, q.type
        if isinstance(node, dict) and str(node.get("op", "")).lower() == "casei":
            inner, kind = self._operand(node["args"][0])
            if kind != "string":
                raise FilterError("CASEI applies to text")
            return func.lower(inner if _is_sql(inner) else _bound(inner, String)), "string"
        if isinstance(node, dict) and "op" in node:
            raise FilterError(f"the function or operator {node['op']!r} is not supported in a comparison")
        if isinstance(node, dict) and ("timestamp" in node or "date" in node):
            return _instant(node), "timestamp"
        if isinstance(node, dict):
            raise FilterError(f"unexpected value {json.dumps(node)[:80]} in a comparison")
        if isinstance(node, bool):
            return node, "boolean"
        if isinstance(node, (int, float)):
            if not math.isfinite(node):
                raise FilterError("numbers in a filter must be finite")
            return node, "number"
        if isinstance(node, str):
            return node, "string"
        if node is None:
            raise FilterError("compare with NULL through IS NULL")
        raise FilterError(f"unexpected value {node!r} in the filter")

    def _pair(self, args: list[Any]) -> tuple[Any, Any]:
        left, left_type = self._operand(args[0])
        right, right_type = self._operand(args[1])
        if not (_is_sql(left) or _is_sql(right)):
            raise FilterError("a comparison needs at least one property")
        if not _compatible(left_type, right_type):
            name = _name(args[0]) or _name(args[1])
            raise FilterError(f"wrong type in the filter: {name!r} is {left_type if _name(args[0]) else right_type}, "
                              f"compared with a {right_type if _name(args[0]) else left_type}")  # fmt: skip
        return left, right

    # --- predicates -------------------------------------------------------------------------

    def _comparison(self, op: str, args: list[Any]) -> ColumnElement:
        left, right = self._pair(args)
        if not _is_sql(left):  # value op property: turn around
            flipped = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)
            left, right, op = right, left, flipped
        return getattr(left, COMPARISONS[op])(right)

    def _like(self, args: list[Any]) -> ColumnElement:
        column, kind = self._operand(args[0])
        pattern, pattern_kind = self._operand(args[1])
        if kind != "string" or pattern_kind != "string" or not isinstance(pattern, str):
            raise FilterError("LIKE compares a text property with a text pattern")
        if self.dialect == "sqlite":
            # SQLite's LIKE ignores ASCII case; CQL2's does not. GLOB is case-sensitive.
            return column.op("GLOB")(_bound(_glob(pattern), String))
        return column.like(_bound(pattern, String), escape="\\")

    def _in(self, args: list[Any]) -> ColumnElement:
        q = self._property(args[0])
        values = args[1]
        if not isinstance(values, list) or not values:
            raise FilterError("IN needs a non-empty list of values")
        checked = []
        for value in values:
            literal, kind = self._operand(value)
            if _is_sql(literal) or not _compatible(q.type, kind):
                raise FilterError(
                    f"wrong type in the filter: IN on {_name(args[0])!r} ({q.type}) lists a {kind}"
                )
            checked.append(literal)
        return q.column.in_(checked)

    def _between(self, args: list[Any]) -> ColumnElement:
        q = self._property(args[0])
        if q.type not in ("integer", "number", "timestamp"):
            raise FilterError(f"BETWEEN needs a number or time property; {_name(args[0])!r} is {q.type}")
        low, low_kind = self._operand(args[1])
        high, high_kind = self._operand(args[2])
        if not (_compatible(q.type, low_kind) and _compatible(q.type, high_kind)):
            raise FilterError(f"wrong type in the filter: BETWEEN on {_name(args[0])!r} ({q.type})")
        return q.column.between(low, high)

    def _s_intersects(self, args: list[Any]) -> ColumnElement:
        if isinstance(args[0], dict) and "property" in args[0]:
            q, literal = self._property(args[0]), args[1]
        else:
            q, literal = self._property(args[1]), args[0]
        if q.type != "geometry":
            raise FilterError(f"S_INTERSECTS needs the geometry; {_name(args[0])!r} is {q.type}")
        geometry = self.to_storage(_geometry(literal))
        shape = func.ST_GeomFromText(_bound(geometry.wkt, String), 4326)
        found = func.ST_Intersects(q.column, shape)
        return found == 1 if self.dialect == "sqlite" else found

    def _temporal(self, op: str, args: list[Any]) -> ColumnElement:
        q = self._property(args[0])
        if q.type != "timestamp":
            raise FilterError(f"{op.upper()} needs a time property; {_name(args[0])!r} is {q.type}")
        start, end = _interval(args[1])
        column = q.column
        if op == "t_equals":
            if start != end:
                raise FilterError("T_EQUALS of an instant property takes an instant")
            return column == start
        inside = and_(
            *(
                c
                for c in (column >= start if start else None, column <= end if end else None)
                if c is not None
            )
        )
        if op == "t_intersects":
            return inside
        if op == "t_disjoint":
            return not_(inside)
        if op == "t_before":
            return column < start if start else false()
        if op == "t_after":
            return column > end if end else false()
        # t_during: strictly inside a proper interval
        parts = [column > start] if start else []
        parts += [column < end] if end else []
        return and_(*parts) if parts else true()


def _is_sql(value: Any) -> bool:
    """A SQL expression (a property), as opposed to a literal from the filter."""
    return isinstance(value, ColumnElement) or hasattr(value, "__clause_element__")


def _name(node: Any) -> str | None:
    return node["property"] if isinstance(node, dict) and "property" in node else None


def _compatible(a: str, b: str) -> bool:
    numeric = ("integer", "number")
    return a == b or (a in numeric and b in numeric)


def _bound(value: Any, type_) -> Any:
    return bindparam(None, value, type_=type_, unique=True)


def _glob(pattern: str) -> str:
    """A CQL2 LIKE pattern (``%``, ``_``, ``\\`` escapes) as a SQLite GLOB pattern."""
    out, escaped = [], False
    for ch in pattern:
        if escaped:
            out.append(f"[{ch}]" if ch in "*?[" else ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "%":
            out.append("*")
        elif ch == "_":
            out.append("?")
        elif ch in "*?[":
            out.append(f"[{ch}]")
        else:
            out.append(ch)
    return "".join(out)


def _instant(node: dict[str, Any]) -> datetime:
    if "timestamp" in node:
        try:
            value = datetime.fromisoformat(str(node["timestamp"]).replace("Z", "+00:00"))
        except ValueError:
            raise FilterError(f"bad TIMESTAMP {node['timestamp']!r}") from None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    try:
        day = date.fromisoformat(str(node["date"]))
    except ValueError:
        raise FilterError(f"bad DATE {node['date']!r}") from None
    # A date is the users' day: midnight China time, as in the ``datetime`` parameter.
    return datetime.combine(day, time(), tzinfo=CHINA).astimezone(UTC)


def _interval(node: Any) -> tuple[datetime | None, datetime | None]:
    """(start, end) of a temporal literal; an instant is both ends, a DATE the whole day."""
    if isinstance(node, dict) and "interval" in node:
        ends = node["interval"]
        bounds = []
        for i, end in enumerate(ends):
            if end == "..":
                bounds.append(None)
            elif isinstance(end, dict):
                bounds.append(_interval(end)[i])
            else:
                try:
                    bounds.append(_instant({"timestamp": end} if "T" in str(end) else {"date": end}))
                except FilterError:
                    raise FilterError(f"bad INTERVAL end {end!r}") from None
                if "T" not in str(end) and i == 1:
                    bounds[-1] += timedelta(days=1) - timedelta(microseconds=1)
        start, end = bounds
        if start and end and end < start:
            raise FilterError("the INTERVAL ends before it starts")
        return start, end
    if isinstance(node, dict) and "date" in node:
        start = _instant(node)
        return start, start + timedelta(days=1) - timedelta(microseconds=1)
    if isinstance(node, dict) and "timestamp" in node:
        value = _instant(node)
        return value, value
    raise FilterError(f"a temporal function needs a TIMESTAMP, DATE or INTERVAL, got {json.dumps(node)[:80]}")


def _geometry(node: Any) -> shapely.Geometry:
    if isinstance(node, dict) and "bbox" in node:
        box = node["bbox"]
        if len(box) == 6:
            box = [box[0], box[1], box[3], box[4]]
        if len(box) != 4 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in box):
            raise FilterError("BBOX takes four finite numbers")
        if box[0] > box[2] or box[1] > box[3]:
            raise FilterError("BBOX minimum is larger than its maximum")
        return shapely.box(*box)
    if isinstance(node, dict) and "type" in node:
        try:
            geometry = shapely.from_geojson(json.dumps(node))
        except (shapely.errors.GEOSException, ValueError):
            raise FilterError("the geometry in S_INTERSECTS is not valid GeoJSON") from None
        if geometry.is_empty:
            raise FilterError("the geometry in S_INTERSECTS is empty")
        return shapely.make_valid(geometry)
    raise FilterError("S_INTERSECTS needs a geometry or a BBOX")


__all__ = ["TYPES", "Compiler", "FilterError", "Queryable", "parse"]
