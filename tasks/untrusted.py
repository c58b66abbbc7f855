"""Text from brief files (ids, reasons, file names, copy) made safe to show: in a terminal or a log, in
Markdown, or shortened inside a message."""

from __future__ import annotations

from html import escape

# Characters that open or close Markdown syntax (":" and "@" for autolinks, "=" and "-" for underlined
# headings, "$" for math); a backslash escapes each. The ones HTML gives meaning to become entities.
MARKDOWN_PUNCTUATION = frozenset("\\`*_{}[]()#+-.!|~:@=$^")


def printable(text: object) -> str:
    """The text on one line, with control, format and line-separator characters as repr-style escapes
    (\\n, \\x1b, \\u202e), so that it cannot move the cursor, recolour the terminal or forge a log line."""
    s = str(text)
    if s.isprintable():
        return s
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in s)


def shorten(text: object, width: int = 80) -> str:
    """The text cut to `width` characters with an ellipsis, for echoing input inside a message."""
    s = str(text)
    return s if len(s) <= width else s[: width - 1] + "…"


def markdown(text: object) -> str:
    """Literal text inside Markdown: no emphasis, links, headings, lists or HTML come from it."""
    return "".join(
        "\\" + c if c in MARKDOWN_PUNCTUATION else escape(c) if c in "<>&\"'" else c for c in str(text)
    )
