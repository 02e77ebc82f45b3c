"""Names of uploaded files as the service stores and shows them.

A file name comes from the uploader's device, not from a person typing into a field, so an odd
one is repaired rather than refused: control characters (NUL included, which PostgreSQL cannot
store in text) become U+FFFD, lone surrogates are replaced, and a long name is cut with an ellipsis.
"""


def printable_name(filename: str, limit: int) -> str:
    name = "".join("\ufffd" if ch < " " or "\x7f" <= ch < "\xa0" else ch for ch in str(filename))
    name = name.encode("utf-8", "replace").decode("utf-8")  # lone surrogates
    return name if len(name) <= limit else name[: limit - 1] + "…"
