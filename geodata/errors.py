"""Domain errors raised for bad geodata input.

The web layer maps these to problem+json responses once (see ``api.problems``); the CLI prints
them and exits non-zero. Messages must name the problem in words a field user understands.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Problem:
    """One named problem found in an input, e.g. an invalid polygon or an overlapping pair."""

    kind: str  # machine-readable, e.g. "invalid-geometry", "overlap", "duplicate-code"
    message: str  # human-readable, names the feature(s) involved
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, **self.details}


class InputError(Exception):
    """Input that cannot be accepted. ``problems`` lists each individual finding."""

    title = "Invalid input"
    status = 422

    def __init__(self, message: str, problems: list[Problem] | None = None):
        super().__init__(message)
        self.message = message
        self.problems = problems or []


class GeodataError(InputError):
    """A geodata file or geometry that cannot be accepted (format, CRS, geometry, attributes)."""

    title = "Invalid geodata"


class UnsupportedFormat(GeodataError):
    title = "Unsupported file format"
    status = 415
