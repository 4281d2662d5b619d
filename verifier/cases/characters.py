"""Characters that make what a reviewer reads differ from what runs.

* **Bidirectional controls** (U+202A..U+202E, U+2066..U+2069, U+200E, U+200F,
  U+061C) reorder how text is *displayed* without changing what it *is*: a
  right-to-left override in a ``#`` comment can make a line look like
  another ("Trojan Source", CVE-2021-42574). A case file that holds one
  anywhere, comments included, is refused.
* **Non-ASCII characters in an expression.** A Cyrillic ``х`` looks like
  ``x`` but is another name, and Python folds some look-alikes (fullwidth
  ``ｘ``) into ASCII silently. Names, operators and strings in expressions
  are ASCII; a comment inside an expression may hold anything but a
  bidirectional control.
"""

from __future__ import annotations

import io
import tokenize
import unicodedata

BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")


def describe(char: str) -> str:
    """``'х' (U+0445 CYRILLIC SMALL LETTER HA)``; invisible characters without the quoted glyph."""
    name = unicodedata.name(char, "unnamed")
    shown = "" if char in BIDI_CONTROLS or unicodedata.category(char).startswith(("C", "Z")) else f"'{char}' "
    return f"{shown}(U+{ord(char):04X} {name})"


def first_bidi_control(text: str) -> tuple[int, int, str] | None:
    """``(line, column, char)`` (1-based) of the first bidirectional control in ``text``, or None."""
    for i, char in enumerate(text):
        if char in BIDI_CONTROLS:
            return text.count("\n", 0, i) + 1, i - text.rfind("\n", 0, i), char
    return None


BIDI_PROBLEM = ("the invisible bidirectional control character {what} at line {line}, column {col}: it makes "
                "the text display in another order than it runs")
BIDI_HINT = "Remove it; case files and expressions never need one."


def first_non_ascii(text: str) -> tuple[int, int, str] | None:
    """``(line, column, char)`` (line 1-based, column 0-based) of the first non-ASCII character outside a
    ``#`` comment, or of a bidirectional control anywhere; None when there is none."""
    if text.isascii():
        return None
    bidi = first_bidi_control(text)
    if bidi is not None:
        return bidi[0], bidi[1] - 1, bidi[2]
    comments = set()
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.COMMENT:
                comments.add(tok.start[0])
                comments |= {(tok.start[0], c) for c in range(tok.start[1], tok.end[1])}
    except (tokenize.TokenError, SyntaxError, IndentationError):
        comments = set()                  # cannot tell comments apart: every character counts
    for lineno, line in enumerate(text.split("\n"), 1):
        for col, char in enumerate(line):
            if not char.isascii() and (lineno, col) not in comments:
                return lineno, col, char
    return None
