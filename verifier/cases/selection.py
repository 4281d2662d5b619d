"""``-k`` expressions, as in pytest: substrings joined by ``and``, ``or``, ``not`` and parentheses.

``-k "softmax and not float16"`` keeps names containing ``softmax`` and not
``float16``. Matching is case-insensitive, on the case's name and tags, and
by substring as in pytest (``-k py`` also keeps ``cross_entropy``; the README
says so).
"""

from __future__ import annotations

import re
from typing import Callable

from ..errors import VerifierError

_TOKEN = re.compile(r"\s*(\(|\)|[^\s()]+)")


def compile_keyword(expression: str) -> Callable[[str], bool]:
    """A predicate over a case's searchable text; raises VerifierError on bad syntax."""
    tokens = _TOKEN.findall(expression)
    if not tokens:
        return lambda text: True
    pos = 0

    def peek():
        return tokens[pos] if pos < len(tokens) else None

    def take():
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def chain(word, operand, join):
        left = operand()
        while peek() == word:
            take()
            left = (lambda a, b: lambda t: join(a(t), b(t)))(left, operand())
        return left

    def expr():
        return chain("or", term, lambda a, b: a or b)

    def term():
        return chain("and", factor, lambda a, b: a and b)

    def factor():
        tok = peek()
        if tok is None:
            raise VerifierError(f"-k {expression!r}: the expression ends too early")
        if tok == "not":
            take()
            inner = factor()
            return lambda t: not inner(t)
        if tok == "(":
            take()
            inner = expr()
            if take_or_none() != ")":
                raise VerifierError(f"-k {expression!r}: missing ')'")
            return inner
        if tok in (")", "and", "or"):
            raise VerifierError(f"-k {expression!r}: unexpected '{tok}'")
        word = take().lower()
        return lambda t: word in t

    def take_or_none():
        return take() if peek() is not None else None

    predicate = expr()
    if pos != len(tokens):
        raise VerifierError(f"-k {expression!r}: unexpected '{tokens[pos]}'")
    return lambda text: predicate(text.lower())
